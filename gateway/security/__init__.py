"""Gateway secrets: PAN tokens (HMAC), payload signatures (Ed25519), key files."""

from posgw.gateway.security.keys import (
    PUBLIC_KEY_FILE,
    GatewayKeys,
    KeyFileError,
    generate_keys,
    load_keys,
    public_pem,
)
from posgw.gateway.security.signing import SIGNATURE_KEY, PayloadSigner
from posgw.gateway.security.tokens import TOKEN_HEX_CHARS, PanTokenizer

__all__ = [
    "PUBLIC_KEY_FILE",
    "SIGNATURE_KEY",
    "TOKEN_HEX_CHARS",
    "GatewayKeys",
    "KeyFileError",
    "PanTokenizer",
    "PayloadSigner",
    "generate_keys",
    "load_keys",
    "public_pem",
]
