"""A throwaway PKI for the broker TLS tests, generated with `cryptography`.

Two unrelated CAs; under the first: a server certificate for 127.0.0.1 (IP
SAN, so hostname checking stays on), a valid client certificate and one that
expired yesterday. EC P-256 keys: generating them takes milliseconds.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Identity:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class BrokerPki:
    ca: Path  # the CA the broker trusts and that signed the server certificate
    other_ca: Path  # an unrelated CA: pinning it must fail
    server: Identity
    client: Identity
    expired_client: Identity


@dataclass(frozen=True, slots=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "posgw tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ca(common_name: str, directory: Path) -> tuple[_Issuer, Path]:
    key, name, now = _new_key(), _name(common_name), datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    path = directory / f"{common_name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return _Issuer(name, key), path


def _leaf(issuer: _Issuer, common_name: str, directory: Path, *, server: bool,
          not_before: datetime, not_after: datetime) -> Identity:
    key = _new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(issuer.name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer.key.public_key()), critical=False))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    identity = Identity(directory / f"{common_name}.crt", directory / f"{common_name}.key")
    identity.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private_key(identity.key, key)
    return identity


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def make_pki(directory: Path) -> BrokerPki:
    """Writes every certificate and key of the tests' PKI under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    issuer, ca = _ca("test-ca", directory)
    _, other_ca = _ca("other-ca", directory)
    return BrokerPki(
        ca=ca, other_ca=other_ca,
        server=_leaf(issuer, "broker", directory, server=True,
                     not_before=now - DAY, not_after=now + 30 * DAY),
        client=_leaf(issuer, "gw-b001-1", directory, server=False,
                     not_before=now - DAY, not_after=now + 30 * DAY),
        expired_client=_leaf(issuer, "gw-expired", directory, server=False,
                             not_before=now - 30 * DAY, not_after=now - DAY))
