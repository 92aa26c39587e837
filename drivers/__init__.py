"""Transports to terminals and hosts: serial (pyserial), USB (pyusb) and TCP."""
