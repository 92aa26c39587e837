"""`FramingSpec`: the `[framing]` table of a firmware profile, validated once.

```toml
[framing]
length_header = "binary2"   # "none" | "binary2" | "bcd2" | "ascii4" | "hex4"
tpdu = false                # 5-byte TPDU after the length header
header_bytes = 0            # fixed header after the TPDU (UnionPay POS header: 6)
envelope = "none"           # "none" | "stx-etx" | "dle-stx"
check = "lrc"               # "lrc" | "crc16" (envelopes only)
lrc_seed = 0                # 0x00 or 0x7F (any 0..255)
lrc_covers_stx = false      # stx-etx only; ETX is always covered
handshake = "none"          # "none" | "ack-nak" | "enq-ack-nak" (envelopes only)
max_frame = 8192
max_retransmits = 3
inter_byte_ms = 200
ack_timeout_ms = 3000
response_timeout_ms = 60000
```

With an envelope, `length_header` is the optional *inner* length after STX,
so it defaults to "none" there ("binary2" only applies to bare
length-prefixed streams); "dle-stx" frames take no length header. Setting an
envelope-only key (`check`, `lrc_seed`, `lrc_covers_stx`, a handshake) for a
profile without an envelope is an error rather than silently ignored.
Every error is a `SpecError` naming `framing.<key>` and the profile file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from posgw.protocols.framing.checks import Check, CrcCheck, LrcCheck
from posgw.protocols.framing.dle import DleFramer
from posgw.protocols.framing.interfaces import Framer
from posgw.protocols.framing.length import (
    DEFAULT_MAX_FRAME,
    LengthHeader,
    LengthPrefixedFramer,
    check_max_frame,
)
from posgw.protocols.framing.link import (
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_INTER_BYTE_TIMEOUT,
    DEFAULT_MAX_RETRANSMITS,
    DEFAULT_RESPONSE_TIMEOUT,
    Handshake,
    Link,
    LinkConfig,
)
from posgw.protocols.framing.stx_etx import StxEtxFramer
from posgw.protocols.iso8583.errors import SpecError
from posgw.protocols.tables import TableReader

_NONE = "none"
_MAX_HEADER = 64  # UnionPay uses 6; anything near this is a typo


class EnvelopeKind(StrEnum):
    """What marks frame boundaries on the line besides a length header."""

    NONE = "none"
    STX_ETX = "stx-etx"
    DLE_STX = "dle-stx"


class CheckKind(StrEnum):
    """Which frame check an envelope carries."""

    LRC = "lrc"
    CRC16 = "crc16"


@dataclass(frozen=True, slots=True)
class FramingSpec:
    """Validated framing parameters of one firmware profile."""

    length_header: LengthHeader | None = LengthHeader.BINARY2
    tpdu: bool = False
    header_bytes: int = 0
    envelope: EnvelopeKind = EnvelopeKind.NONE
    check: CheckKind = CheckKind.LRC
    lrc_seed: int = 0x00
    lrc_covers_stx: bool = False
    handshake: Handshake = Handshake.NONE
    max_frame: int = DEFAULT_MAX_FRAME
    max_retransmits: int = DEFAULT_MAX_RETRANSMITS
    inter_byte_ms: int = round(DEFAULT_INTER_BYTE_TIMEOUT * 1000)
    ack_timeout_ms: int = round(DEFAULT_ACK_TIMEOUT * 1000)
    response_timeout_ms: int = round(DEFAULT_RESPONSE_TIMEOUT * 1000)

    def __post_init__(self) -> None:
        _check_consistency(self)

    @classmethod
    def from_mapping(cls, mapping: object, source: str = "") -> FramingSpec:
        """Parse an already-parsed `[framing]` table; raise SpecError on any fault."""
        if not isinstance(mapping, Mapping):
            raise SpecError("framing", "must be a table", source)
        table, default = TableReader(mapping, "framing", source, error=SpecError), cls()
        envelope = EnvelopeKind(table.choice("envelope", EnvelopeKind, default.envelope))
        length_default = LengthHeader.BINARY2 if envelope is EnvelopeKind.NONE else _NONE
        length = table.choice("length_header", (_NONE, *LengthHeader), length_default)
        if envelope is EnvelopeKind.NONE:
            table.forbid(("check", "lrc_seed", "lrc_covers_stx"), "applies to envelopes only")
        if envelope is EnvelopeKind.DLE_STX:
            table.forbid(("lrc_covers_stx",), "applies to stx-etx only")
        check = CheckKind(table.choice("check", CheckKind, default.check))
        if check is CheckKind.CRC16:
            table.forbid(("lrc_seed",), 'applies to check = "lrc" only')
        try:
            spec = cls(
                length_header=None if length == _NONE else LengthHeader(length),
                tpdu=table.flag("tpdu", default.tpdu),
                header_bytes=table.integer("header_bytes", default.header_bytes, 0, _MAX_HEADER),
                envelope=envelope,
                check=check,
                lrc_seed=table.integer("lrc_seed", default.lrc_seed, 0x00, 0xFF),
                lrc_covers_stx=table.flag("lrc_covers_stx", default.lrc_covers_stx),
                handshake=Handshake(table.choice("handshake", Handshake, default.handshake)),
                max_frame=table.integer("max_frame", default.max_frame, 1, 0xFFFF),
                max_retransmits=table.integer("max_retransmits", default.max_retransmits, 0),
                inter_byte_ms=table.integer("inter_byte_ms", default.inter_byte_ms, 1),
                ack_timeout_ms=table.integer("ack_timeout_ms", default.ack_timeout_ms, 1),
                response_timeout_ms=table.integer(
                    "response_timeout_ms", default.response_timeout_ms, 1
                ),
            )
        except SpecError as error:  # raised by __post_init__: add the file name
            raise SpecError(error.key, error.reason, source) from None
        table.reject_unknown()
        return spec

    def link_config(self) -> LinkConfig:
        """The link's handshake, envelope layout and timers (in seconds)."""
        return LinkConfig(
            handshake=self.handshake,
            has_tpdu=self.tpdu,
            header_len=self.header_bytes,
            max_retransmits=self.max_retransmits,
            inter_byte_timeout=self.inter_byte_ms / 1000,
            ack_timeout=self.ack_timeout_ms / 1000,
            response_timeout=self.response_timeout_ms / 1000,
        )


def build_framer(spec: FramingSpec) -> Framer:
    """The framer `spec` describes (length-prefixed, STX/ETX or DLE)."""
    match spec.envelope:
        case EnvelopeKind.NONE:
            assert spec.length_header is not None  # guaranteed by _check_consistency
            return LengthPrefixedFramer(spec.length_header, spec.max_frame)
        case EnvelopeKind.STX_ETX:
            return StxEtxFramer(
                check=_build_check(spec),
                covers_stx=spec.lrc_covers_stx,
                inner_length=spec.length_header,
                max_frame=spec.max_frame,
            )
        case EnvelopeKind.DLE_STX:
            return DleFramer(check=_build_check(spec), max_frame=spec.max_frame)


def build_link(spec: FramingSpec) -> Link:
    """A ready link for one terminal line of the profile `spec` describes."""
    return Link(build_framer(spec), spec.link_config())


def _build_check(spec: FramingSpec) -> Check:
    return LrcCheck(spec.lrc_seed) if spec.check is CheckKind.LRC else CrcCheck()


def _check_consistency(spec: FramingSpec) -> None:
    if spec.envelope is EnvelopeKind.NONE and spec.length_header is None:
        raise SpecError("framing.length_header", "without an envelope a length header is needed")
    if spec.envelope is EnvelopeKind.NONE and spec.handshake is not Handshake.NONE:
        raise SpecError("framing.handshake", "needs an envelope (stx-etx or dle-stx)")
    if spec.envelope is EnvelopeKind.DLE_STX and spec.length_header is not None:
        raise SpecError("framing.length_header", 'dle-stx frames take no length header: use "none"')
    if not 0 <= spec.lrc_seed <= 0xFF:
        raise SpecError("framing.lrc_seed", f"must be 0..255, got {spec.lrc_seed}")
    check_max_frame(spec.max_frame, spec.length_header)
