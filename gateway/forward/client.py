"""Building one aiomqtt client per connection attempt.

aiomqtt does not reconnect, and a Client reused after a failed or
timed-out connect can be unusable (empicano/aiomqtt#269, #288, #334): the
forwarder calls `new_client` afresh for every attempt.
"""

from __future__ import annotations

import logging

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from posgw.gateway.config import MqttConfig as MqttSettings

#: aiomqtt logs a warning for every publish started while more than ten are
#: pending: with our window of 64 that is nearly every publish, and writing
#: those lines cost more than the publishing. Errors still come through.
MQTT_LOGGER = logging.getLogger("posgw.gateway.forward.aiomqtt")
MQTT_LOGGER.setLevel(logging.ERROR)
SESSION_EXPIRY_S = 7 * 24 * 3600


def new_client(settings: MqttSettings, *, client_id: str, will: aiomqtt.Will | None,
               max_inflight: int, timeout_s: float) -> aiomqtt.Client:
    tls = None
    if settings.tls_ca or settings.tls_cert:
        tls = aiomqtt.TLSParameters(ca_certs=settings.tls_ca, certfile=settings.tls_cert,
                                    keyfile=settings.tls_key)
    # A persistent session: commands the center sends while this gateway is
    # disconnected wait at the broker for it.
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: untyped
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    return aiomqtt.Client(
        settings.host, settings.port,
        identifier=settings.client_id or client_id, clean_start=False, properties=properties,
        username=settings.username, password=settings.password,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will, keepalive=settings.keepalive, tls_params=tls,
        max_inflight_messages=max_inflight, timeout=timeout_s, logger=MQTT_LOGGER,
    )
