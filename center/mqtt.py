"""The center's MQTT clients: one fresh aiomqtt Client per connection attempt.

aiomqtt does not reconnect, and a Client reused after a failed connect can
be unusable (empicano/aiomqtt#269, #288, #334), so callers build a new one
for every attempt, as the gateway's forwarder does.

Two things aiomqtt 2.5 does not expose, and why we need them:

* **Manual PUBACK.** paho acknowledges a QoS 1 message as soon as it has
  handed it to aiomqtt's in-memory queue; a crash before our insert would
  lose a message the broker considers delivered. paho (>= 2.0) can leave the
  PUBACK to the application (`manual_ack`, eclipse-paho/paho.mqtt.python#753);
  aiomqtt has no option for it yet (empicano/aiomqtt#345, still open), so we
  switch it on the wrapped paho client, as suggested in that thread.
* **A persistent session from the first connect.** aiomqtt's default
  `clean_start` is "first connect only", which would throw away, at every
  process start, exactly the messages the broker queued while we were
  away; we pass clean_start=False with a Session Expiry Interval.
"""

from __future__ import annotations

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from posgw.center.config import CenterMqtt

QOS_AT_LEAST_ONCE = 1


def new_client(mqtt: CenterMqtt, *, client_id: str | None = None, persistent: bool = False,
               manual_ack: bool = False, timeout_s: float = 10.0) -> aiomqtt.Client:
    """A client for one connection attempt.

    `persistent` needs a stable client id (the session is found by it);
    `manual_ack` means every QoS 1 message must be passed to `ack()`.
    """
    identifier = client_id or mqtt.client_id
    if persistent and not identifier:
        raise ValueError("a persistent session needs a client_id")
    client = aiomqtt.Client(
        mqtt.host, mqtt.port, identifier=identifier,
        username=mqtt.username, password=mqtt.password,
        protocol=aiomqtt.ProtocolVersion.V5, keepalive=mqtt.keepalive, timeout=timeout_s,
        tls_params=_tls(mqtt),
        clean_start=not persistent,
        properties=_session_properties(mqtt.session_expiry_s) if persistent else None,
    )
    if manual_ack:
        # Before connecting: a resumed session delivers its queue right after CONNACK.
        client._client.manual_ack_set(True)
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """PUBACK `message` now (manual_ack clients). On a dropped connection this
    is a no-op and the broker redelivers the message to the session."""
    client._client.ack(message.mid, message.qos)


def _session_properties(expiry_s: int) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry_s
    return properties


def _tls(mqtt: CenterMqtt) -> aiomqtt.TLSParameters | None:
    if not (mqtt.tls_ca or mqtt.tls_cert):
        return None
    return aiomqtt.TLSParameters(ca_certs=mqtt.tls_ca, certfile=mqtt.tls_cert,
                                 keyfile=mqtt.tls_key)
