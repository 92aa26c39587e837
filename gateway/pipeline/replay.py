"""Rule 3: a retransmitted request gets the stored response, nothing new.

`RecentResponses` answers the common case from memory: a terminal repeats
a request within its response timeout (seconds to minutes), so the newest
responses, warmed from the ledger on start, cover it without a database
read per request. A request still in flight when its repeat arrives makes
the repeat wait for the first one's answer. Past the cache, the ledger's
unique key (terminal, class, STAN, transmission time) still refuses a
second row, and the pipeline answers from the stored row.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass

from posgw.gateway.store.models import FORBIDDEN_RESPONSE_FIELDS
from posgw.protocols.iso8583.message import FieldValue, Message

#: Responses kept in memory: about 6 MB (each one compact JSON string, ~300
#: bytes with its key). Hours of a branch's traffic, 10 s of 2,000 tx/s; a
#: repeat older than that is answered from the ledger's row instead.
DEFAULT_RECENT = 20_000
_BYTES_PREFIX = "hex:"


@dataclass(frozen=True, slots=True)
class RequestKey:
    terminal_id: str
    message_class: str  # MTI second digit: 1 authorization, 2 financial, 4 reversal
    stan: str
    transmission_time: str


def _compact(key: RequestKey) -> str:
    return f"{key.terminal_id}|{key.message_class}|{key.stan}|{key.transmission_time}"


def stored_fields(response: Message) -> dict[str, str]:
    """The response's fields as the ledger keeps them: text, card data removed."""
    stored: dict[str, str] = {}
    for number, value in response.fields.items():
        if str(number) in FORBIDDEN_RESPONSE_FIELDS:
            continue
        stored[str(number)] = value if isinstance(value, str) else _BYTES_PREFIX + value.hex()
    return stored


def replayed(mti: str, stored: dict[str, str]) -> Message:
    """The Message `stored_fields` was made from, under the response MTI `mti`."""
    fields: dict[int, FieldValue] = {}
    for number, value in stored.items():
        is_bytes = value.startswith(_BYTES_PREFIX)
        fields[int(number)] = bytes.fromhex(value[len(_BYTES_PREFIX):]) if is_bytes else value
    return Message(mti, dict(sorted(fields.items())))


class RecentResponses:
    def __init__(self, capacity: int = DEFAULT_RECENT) -> None:
        self._capacity = capacity
        # A dict of a dozen short strings costs ~2 KB; its JSON text a tenth.
        self._responses: OrderedDict[str, str] = OrderedDict()
        self._in_flight: dict[RequestKey, asyncio.Future[dict[str, str]]] = {}

    def get(self, key: RequestKey) -> dict[str, str] | None:
        text = self._responses.get(_compact(key))
        return json.loads(text) if text is not None else None

    def remember(self, key: RequestKey, stored: dict[str, str]) -> None:
        self._responses[_compact(key)] = json.dumps(stored, separators=(",", ":"))
        if len(self._responses) > self._capacity:
            self._responses.popitem(last=False)

    def in_flight(self, key: RequestKey) -> asyncio.Future[dict[str, str]] | None:
        return self._in_flight.get(key)

    def begin(self, key: RequestKey) -> asyncio.Future[dict[str, str]]:
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        return future

    def finish(self, key: RequestKey, stored: dict[str, str] | None) -> None:
        """End the in-flight entry; `stored` None means nothing was recorded."""
        future = self._in_flight.pop(key, None)
        if stored is not None:
            self.remember(key, stored)
        if future is not None and not future.done():
            if stored is None:  # the waiting repeat decides afresh
                future.set_exception(NotRecorded(key.stan))
                future.add_done_callback(lambda done: done.exception())  # no one may wait
            else:
                future.set_result(stored)


class NotRecorded(Exception):
    """The first of two identical requests ended without a stored response."""
