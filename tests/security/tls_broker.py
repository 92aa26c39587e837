"""A private mosquitto with one TLS listener that requires client certificates.

There is no plain listener: the only way in is TLS 1.2 with a client
certificate signed by the test CA.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.brokers import private_broker
from tests.security.certs import BrokerPki, Identity


def tls_listener_options(pki: BrokerPki) -> str:
    # tls_version: on mosquitto 2.0 the lowest version accepted; clients that
    # offer TLS 1.3 get it.
    return (f"cafile {pki.ca}\ncertfile {pki.server.cert}\nkeyfile {pki.server.key}\n"
            "require_certificate true\ntls_version tlsv1.2\n")


@contextmanager
def tls_mosquitto(workdir: Path, pki: BrokerPki) -> Iterator[int]:
    """Runs the broker for the block; yields its port on 127.0.0.1.

    Skipped without mosquitto: the embedded Python broker has no TLS listener.
    """
    with private_broker(workdir, listener_options=tls_listener_options(pki)) as broker:
        yield broker.port


#: An MQTT 5 CONNECT: fixed header (type 1, remaining length 13), protocol
#: name "MQTT", level 5, flags 0x02 (clean start), keepalive 60 s, no
#: properties, an empty client id (the broker assigns one).
MQTT5_CONNECT = bytes.fromhex("100d" "00044d515454" "05" "02" "003c" "00" "0000")
CONNACK_TYPE = 0x20
PROBE_TIMEOUT_S = 5.0


def client_tls(ca: Path, identity: Identity | None,
               version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    """What a client that pins `ca`, presents `identity` and speaks `version` uses."""
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = context.maximum_version = version
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


def first_reply(port: int, tls: ssl.SSLContext | None, *, send_connect: bool = True) -> bytes:
    """The broker's first bytes on a new connection (b"" if it hung up).

    With `send_connect`, after one MQTT CONNECT. Raw sockets, because aiomqtt
    swallows the reason of a refusal: under TLS 1.3 the broker checks the
    client certificate after the client's side of the handshake is done, and
    aiomqtt treats the connection closed before CONNACK as a timeout. Probe
    refusals without `send_connect`: a CONNECT the broker never read can turn
    its close into a TCP reset that discards the alert naming the reason.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S) as raw:
        if tls is None:
            raw.sendall(MQTT5_CONNECT)
            return raw.recv(64)
        with tls.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
            if send_connect:
                wrapped.sendall(MQTT5_CONNECT)
            return wrapped.recv(64)
