"""The `[mqtt]` TLS files, tried at start the way the client will use them.

`mqtt_config.tls_file_problems` has checked, as the file was read, that each
file can be opened; this builds the TLS context itself (CA, certificate and
key), so a file that is not PEM, or a key that is not the certificate's,
stops the start with its key named. At connect time the same mistake would
be one warning every few seconds, forever. Not done as the file is read:
the operator commands load a config and must not pay for `ssl`.
"""

from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from posgw.drivers.mqtt_config import MqttConfig


def tls_problem(config: MqttConfig) -> tuple[str, str] | None:
    """(key, reason) for the first TLS file that cannot be used; None when the
    files make a context (or TLS is off)."""
    if not (config.tls_ca or config.tls_cert):
        return None
    context = ssl.create_default_context()
    if config.tls_ca:
        try:
            context.load_verify_locations(cafile=config.tls_ca)
        except (ssl.SSLError, OSError) as exc:
            return "tls_ca", f"{config.tls_ca}: no CA certificate in it ({_reason(exc)})"
    if config.tls_cert:
        try:
            context.load_cert_chain(config.tls_cert, config.tls_key)
        except (ssl.SSLError, OSError):
            return _which_of_the_pair(config.tls_cert, config.tls_key)
    return None


def _which_of_the_pair(cert: str, key: str | None) -> tuple[str, str]:
    """OpenSSL's "PEM lib" does not say which file it could not use: look."""
    try:
        with open(cert, "rb") as file:
            x509.load_pem_x509_certificate(file.read())
    except ValueError:
        return "tls_cert", f"{cert}: not a PEM certificate"
    if key is not None:
        try:
            with open(key, "rb") as file:
                load_pem_private_key(file.read(), password=None)
        except (ValueError, TypeError):
            return "tls_key", f"{key}: not an unencrypted PEM private key"
    return "tls_key", f"{key}: not the private key of {cert}"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
