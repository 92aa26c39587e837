"""JSON schemas of posgw's published payloads (data only)."""
