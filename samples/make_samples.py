"""Regenerate the shipped sample messages: python samples/make_samples.py

One EMV chip purchase (0200) per profile family, framed exactly as it
travels on the wire for that profile. The card is a well-known public test
PAN; the PIN block and cryptogram are made-up bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from posgw.gateway.profiles import load_profile  # noqa: E402
from posgw.gateway.wire import wrap  # noqa: E402
from posgw.protocols.framing import Envelope, Tpdu  # noqa: E402
from posgw.protocols.iso8583.codec import Codec  # noqa: E402
from posgw.protocols.iso8583.message import Message  # noqa: E402

ICC = bytes.fromhex(
    "9F2608C2C12B098F3DA6E39F2701809F100706010A03A4B8009F3704F8D1BC759F3602000E"
    "950500000080009A032611239C01009F02060000000125005F2A020978820239009F1A020380"
    "9F03060000000000009F3303E0F8C89F34034203009F3501228407A0000000031010"
)
PURCHASE = {
    2: "4761739001010010", 3: "000000", 4: "000000012500", 7: "1123101530", 11: "000123",
    12: "101530", 13: "1123", 22: "051", 23: "001", 25: "00",
    35: "4761739001010010=27122011143844489", 41: "T0000001", 42: "M00000000000001",
    49: "978", 52: bytes.fromhex("0123456789ABCDEF"), 55: ICC,
}
UNIONPAY = {
    2: "6212345678901234", 3: "000000", 4: "000000012500", 11: "000123", 22: "051",
    23: "001", 25: "00", 26: "12", 35: "6212345678901234=27122011143844489",
    41: "T0000003", 42: "M00000000000001", 49: "156",
    52: bytes.fromhex("0123456789ABCDEF"), 55: ICC, 60: "22000001000501",
}


def write(profile_name: str, fields: dict[int, str | bytes], envelope: Envelope | None = None,
          stem: str = "purchase") -> None:
    profile = load_profile(profile_name)
    message = Codec(profile.iso8583).encode(Message("0200", fields))
    path = HERE / f"{profile_name}-{stem}.bin"
    path.write_bytes(wrap(profile.framing, message, envelope))
    print(f"wrote {path.relative_to(HERE.parent)}")


def main() -> None:
    for name in ("iso87-ascii", "iso87-mixed", "iso87-binary", "ecr-stx-lrc", "ecr-zvt-crc"):
        write(name, PURCHASE)
    write("unionpay-tpdu", UNIONPAY,
          Envelope(Tpdu(destination=0x0001, source=0x0000), bytes.fromhex("603100311001")))


if __name__ == "__main__":
    main()
