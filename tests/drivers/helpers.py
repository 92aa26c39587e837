"""Helpers for driver tests: purchase messages and polling with a deadline."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from posgw.gateway.profiles import load_profile
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.message import Message

AsyncTest = Callable[..., Awaitable[None]]

# A contactless EMV purchase as field 55 carries it: amount, currency, cryptogram.
ICC_DATA = bytes.fromhex(
    "9F02 06 000000012345"  # amount authorised
    "5F2A 02 0156"  # transaction currency
    "9F26 08 1122334455667788"  # application cryptogram
    "9F36 02 0042"  # application transaction counter
    .replace(" ", "")
)


def purchase(stan: str = "000123") -> Message:
    """A 0200 purchase request with the fields every shipped dialect defines."""
    return Message(
        "0200",
        {
            2: "4761739001010119",
            3: "000000",
            4: "000000012345",
            11: stan,
            12: "101530",
            13: "0614",
            22: "071",
            25: "00",
            41: "T0000002",  # fixed 8
            42: "M00000000000001",  # fixed 15
            49: "156",
            55: ICC_DATA,
        },
    )


def codec_for(profile: str) -> Codec:
    return Codec(load_profile(profile).iso8583)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` until true; fail the test after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def async_test(timeout: float = 15.0) -> Callable[[AsyncTest], Callable[..., None]]:
    """Run an async test body under asyncio.run with an overall deadline."""

    def wrap(body: AsyncTest) -> Callable[..., None]:
        @functools.wraps(body)
        def runner(*args: Any, **kwargs: Any) -> None:
            async def bounded() -> None:
                async with asyncio.timeout(timeout):
                    await body(*args, **kwargs)

            asyncio.run(bounded())

        return runner

    return wrap


async def read_exactly(transport: Any, size: int) -> bytes:
    """Read from a Transport until `size` bytes have arrived."""
    data = b""
    while len(data) < size:
        data += await transport.read()
    return data
