"""Sans-IO framers: bytes in, events out, timers driven by the caller's `now`.

Map of the parts (each module stands alone; `spec` composes them):

============  ==============================================================
checks        `lrc_xor`, `crc16_kermit` (ZVT CRC-16), `LrcCheck`, `CrcCheck`
length        `LengthHeader` (binary2, bcd2, ascii4, hex4), `LengthPrefixedFramer`
envelope      `Tpdu`, `Envelope`, `join_envelope`
stx_etx       `StxEtxFramer`: STX [length] data ETX|ETB + LRC, multi-block
dle           `DleFramer`: DLE STX data DLE ETX + CRC, DLE doubling (ZVT)
link          `Link`: framer + envelope + ACK/NAK/ENQ/EOT + three timeouts;
              `split_envelope`
spec          `FramingSpec.from_mapping` (profile `[framing]`), `build_link`
interfaces    `Framer`, `MessageLink`: what drivers program against
events        every event, `wire_bytes`
============  ==============================================================

Peer bytes never raise: they become events. `FramingError` means our side
asked for something impossible; `SpecError` means a bad profile.
"""

from posgw.protocols.framing.checks import Check, CrcCheck, LrcCheck, crc16_kermit, lrc_xor
from posgw.protocols.framing.dle import DleFramer
from posgw.protocols.framing.envelope import Envelope, Tpdu, join_envelope
from posgw.protocols.framing.errors import FramingError
from posgw.protocols.framing.events import (
    BlockAccepted,
    ControlReceived,
    Delivered,
    DeliveryFailed,
    Event,
    FrameReceived,
    FrameRejected,
    GarbageSkipped,
    MessageReceived,
    PartialFrameDropped,
    ResponseTimeout,
    Retransmit,
    SendAck,
    SendNak,
    Write,
    wire_bytes,
)
from posgw.protocols.framing.interfaces import Framer, HoldsBlocks, MessageLink
from posgw.protocols.framing.length import LengthHeader, LengthPrefixedFramer
from posgw.protocols.framing.link import Handshake, Link, LinkConfig, split_envelope
from posgw.protocols.framing.spec import (
    CheckKind,
    EnvelopeKind,
    FramingSpec,
    build_framer,
    build_link,
)
from posgw.protocols.framing.stx_etx import StxEtxFramer

__all__ = [
    "BlockAccepted",
    "Check",
    "CheckKind",
    "ControlReceived",
    "CrcCheck",
    "Delivered",
    "DeliveryFailed",
    "DleFramer",
    "Envelope",
    "EnvelopeKind",
    "Event",
    "FrameReceived",
    "FrameRejected",
    "Framer",
    "FramingError",
    "FramingSpec",
    "GarbageSkipped",
    "Handshake",
    "HoldsBlocks",
    "LengthHeader",
    "LengthPrefixedFramer",
    "Link",
    "LinkConfig",
    "LrcCheck",
    "MessageLink",
    "MessageReceived",
    "PartialFrameDropped",
    "ResponseTimeout",
    "Retransmit",
    "SendAck",
    "SendNak",
    "StxEtxFramer",
    "Tpdu",
    "Write",
    "build_framer",
    "build_link",
    "crc16_kermit",
    "join_envelope",
    "lrc_xor",
    "split_envelope",
    "wire_bytes",
]
