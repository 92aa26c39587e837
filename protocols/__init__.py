"""Sans-IO protocol code: ISO 8583 codec, framers, normalization.

Nothing in this package touches a socket, a port, a clock, a file or logging
configuration: bytes and mappings in, values and events out.
"""
