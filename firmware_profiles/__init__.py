"""Firmware profiles: one TOML file per terminal family and firmware (data only)."""
