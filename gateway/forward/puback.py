"""QoS 1 publishes that report the broker's PUBACK reason code.

aiomqtt's `publish` returns once a PUBACK arrives, whatever its reason code
(MQTT 5 §3.4.2.1): a PUBACK 0x87 "not authorized" would pass for a
delivery. `PubackWatch` wraps the paho client's publish callback to keep
the code of each acknowledged message id, and `publish` waits for it. The
callback runs on the event loop (aiomqtt drives paho from it), so a PUBACK
cannot be handled before `publish` has registered its future.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS

from posgw.drivers.mqtt import QOS_AT_LEAST_ONCE

#: MQTT 5: PUBACK reason codes from 0x80 up are failures.
FIRST_FAILURE_CODE = 0x80
#: 0x10 "no matching subscribers": the broker took the message and had nobody
#: to give it to (a shared group after a broker restart, a center away without
#: a session). Counted as published; with confirmations on, the confirm
#: timeout sends it again, since nobody stored it.
NO_MATCHING_SUBSCRIBERS = 0x10


class PubackWatch:
    """Installed once per client, before it connects."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho = client._client
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self._aiomqtt_on_publish: Any = self._paho.on_publish
        self._paho.on_publish = self._on_publish

    async def publish(self, topic: str, payload: bytes, *, retain: bool) -> int:
        """Publish at QoS 1; the PUBACK's reason code (0 = success)."""
        info = self._paho.publish(topic, payload, QOS_AT_LEAST_ONCE, retain)
        if info.rc != MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[info.mid] = future
        try:
            return await future
        finally:
            self._waiting.pop(info.mid, None)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        future = self._waiting.pop(mid, None)
        if future is None:  # a publish of aiomqtt's own (the status birth)
            self._aiomqtt_on_publish(client, userdata, mid, reason_code, properties)
        elif not future.done():
            future.set_result(int(getattr(reason_code, "value", reason_code)))
