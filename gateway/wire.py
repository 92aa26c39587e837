"""One message on or off the wire, for tools that handle bytes at rest.

`posgw decode` and `posgw encode` take whole captured frames, not a live
stream, so they run the profile's framing once over the bytes given.
"""

from __future__ import annotations

from posgw.protocols.framing import (
    Envelope,
    FrameRejected,
    FramingSpec,
    MessageReceived,
    Tpdu,
    build_framer,
    build_link,
    join_envelope,
)

#: Envelope used when encoding for a TPDU profile and the caller gives none:
#: TPDU 60 0000 0000, header all zeros.
DEFAULT_TPDU = Tpdu(destination=0, source=0)


class WireError(Exception):
    """The bytes do not hold exactly one well-framed message."""


def unwrap(spec: FramingSpec, data: bytes) -> tuple[bytes, Envelope]:
    """The ISO 8583 message and its envelope from one framed message."""
    link = build_link(spec)
    messages: list[MessageReceived] = []
    for event in link.receive_data(data, 0.0):
        if isinstance(event, FrameRejected):
            raise WireError(f"frame rejected: {event.reason}")
        if isinstance(event, MessageReceived):
            messages.append(event)
    if not messages:
        raise WireError(f"no complete frame in {len(data)} bytes (try --bare for a bare message)")
    if len(messages) > 1:
        raise WireError(f"{len(messages)} frames in the input; give one")
    return messages[0].message, messages[0].envelope


def wrap(spec: FramingSpec, message: bytes, envelope: Envelope | None = None) -> bytes:
    """`message` framed as the profile sends it (length header, TPDU, STX/ETX, check)."""
    if envelope is None:
        tpdu = DEFAULT_TPDU if spec.tpdu else None
        envelope = Envelope(tpdu, bytes(spec.header_bytes))
    return build_framer(spec).frame(join_envelope(envelope, message))
