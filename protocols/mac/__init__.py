"""Message authentication codes for ISO 8583 (fields 64 and 128), sans-IO.

`algorithms` holds the retail MAC (ISO 9797-1 algorithm 3) and AES-CMAC,
`spec` a profile's `[mac]` table, `message` what a MAC covers and how a
message is verified and signed.
"""

from posgw.protocols.mac.algorithms import (
    MAC_LENGTH,
    MacAlgorithm,
    MacError,
    MacKey,
    aes_cmac,
    compute_mac,
    key_check_value,
    macs_equal,
    retail_mac,
)
from posgw.protocols.mac.message import (
    MacCheck,
    check_message,
    mac_input,
    sign_message,
    without_mac,
)
from posgw.protocols.mac.spec import MAC_FIELDS, MacSpec, parse_mac_spec

__all__ = [
    "MAC_FIELDS",
    "MAC_LENGTH",
    "MacAlgorithm",
    "MacCheck",
    "MacError",
    "MacKey",
    "MacSpec",
    "aes_cmac",
    "check_message",
    "compute_mac",
    "key_check_value",
    "mac_input",
    "macs_equal",
    "parse_mac_spec",
    "retail_mac",
    "sign_message",
    "without_mac",
]
