"""Hypothesis strategies shared by the codec tests: random valid messages for any spec."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from posgw.protocols.iso8583.message import Message
from posgw.protocols.iso8583.spec import FieldSpec, MessageSpec

_ALPHABETS = {
    "n": string.digits,
    "a": string.ascii_letters + " ",
    "an": string.ascii_letters + string.digits + " ",
    "ans": "".join(chr(c) for c in range(0x20, 0x7F)),
    "z": string.digits + "=",
}
#: Long variable fields make examples slow without finding more bugs.
_LONGEST = 120


def field_values(spec: FieldSpec) -> st.SearchStrategy[str | bytes]:
    """Any value `spec` accepts, in the codec's value form (str or bytes)."""
    longest = min(spec.max, _LONGEST)
    units = st.integers(0, longest) if spec.prefix_digits else st.just(spec.max)
    if spec.type == "b":
        per_unit = 2 if spec.enc == "hex" and spec.unit == "chars" else 1
        return units.map(lambda u: u // per_unit).flatmap(
            lambda size: st.binary(min_size=size, max_size=size)
        )
    if spec.type == "xn":
        return units.flatmap(
            lambda u: st.tuples(st.sampled_from("CD"), _text("n", max(u - 1, 0))).map("".join)
        )
    return units.flatmap(lambda u: _text(spec.type, u))


def _text(type_: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=_ALPHABETS[type_], min_size=size, max_size=size)


def messages(spec: MessageSpec, mti: str | None = None) -> st.SearchStrategy[Message]:
    """Random valid messages: a random subset of the spec's fields, random values."""
    numbers = sorted(spec.fields)
    version = {1987: "0", 1993: "1", 2003: "2"}[spec.version]
    mtis = st.just(mti) if mti else st.sampled_from(
        [version + rest for rest in ("100", "110", "200", "210", "400", "410", "800", "810")]
    )

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        chosen = draw(st.lists(st.sampled_from(numbers), unique=True, max_size=24))
        fields = {n: draw(field_values(spec.fields[n])) for n in sorted(chosen)}
        return Message(draw(mtis), fields)

    return build()
