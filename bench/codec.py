"""Codec throughput: posgw vs pyiso8583 on the same messages, in the same run.

A realistic 20-field EMV purchase (0200 with track 2, PIN block and a
~120-byte field 55) is encoded and decoded by both codecs, on the two
profiles that mirror pyiso8583's own specs (iso87-ascii = `default_ascii`,
iso87-mixed = `default`). Each figure is the best of several timed rounds.

    python bench/codec.py [--seconds 0.5]

The last line gives the lowest ratio over the profiles:
    codec vs pyiso8583: encode X.XXx decode Y.YYx
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import iso8583
import iso8583.specs

from bench.readme import machine, update_readmes
from posgw.gateway.profiles import load_profile
from posgw.protocols.iso8583.codec import Codec
from posgw.protocols.iso8583.message import Message

ICC_DATA = bytes.fromhex(
    "9F2608C2C12B098F3DA6E39F2701809F100706010A03A4B8009F3704F8D1BC759F3602000E"
    "950500000080009A032611239C01009F02060000000125005F2A020978820239009F1A020380"
    "9F03060000000000009F3303E0F8C89F34034203009F3501228407A00000000310109F090200"
    "8C9F4104000000125F3401015F24032712319F0607A0000000031010"
)
PURCHASE = Message(
    "0200",
    {
        2: "4761739001010010",
        3: "000000",
        4: "000000012500",
        7: "1123101530",
        11: "000123",
        12: "101530",
        13: "1123",
        14: "2712",
        18: "5411",
        22: "051",
        23: "001",
        25: "00",
        35: "4761739001010010=27122011143844489",
        37: "632710000123",
        41: "T0000001",
        42: "M00000000000001",
        43: "POSGW TEST SHOP         MILANO       ITA",
        49: "978",
        52: bytes.fromhex("0123456789ABCDEF"),
        55: ICC_DATA,
    },
)
PEERS = {"iso87-ascii": iso8583.specs.default_ascii, "iso87-mixed": iso8583.specs.default}


def rate(operation: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    """Best operations/second over `rounds` rounds of about `seconds` each."""
    batch = 1
    while True:  # size a batch to ~10 ms so timer overhead is negligible
        start = time.perf_counter()
        for _ in range(batch):
            operation()
        if time.perf_counter() - start > 0.01:
            break
        batch *= 2
    best = 0.0
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / rounds:
            for _ in range(batch):
                operation()
            done += batch
        best = max(best, done / (time.perf_counter() - start))
    return best


def bench_profile(name: str, seconds: float) -> tuple[list[str], tuple[float, float]]:
    codec, peer_spec = Codec(load_profile(name).iso8583), PEERS[name]
    ours_wire = codec.encode(PURCHASE)
    doc = {"t": PURCHASE.mti}
    doc.update({str(n): v.hex().upper() if isinstance(v, bytes) else v
                for n, v in PURCHASE.fields.items()})
    peer_wire, _ = iso8583.encode(doc, peer_spec)
    assert bytes(peer_wire) == ours_wire, "codecs disagree: the comparison would be unfair"
    figures = {
        "encode": (rate(lambda: codec.encode(PURCHASE), seconds),
                   rate(lambda: iso8583.encode(doc, peer_spec), seconds)),
        "decode": (rate(lambda: codec.decode(ours_wire), seconds),
                   rate(lambda: iso8583.decode(ours_wire, peer_spec), seconds)),
    }
    lines = [f"{name:12} {op}  posgw {ours:>9,.0f} msg/s   pyiso8583 {peer:>9,.0f} msg/s"
             f"   {ours / peer:4.2f}x" for op, (ours, peer) in figures.items()]
    for line in lines:
        print(line)
    ratios = (figures["encode"][0] / figures["encode"][1],
              figures["decode"][0] / figures["decode"][1])
    return lines, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time per measurement (default 1.0)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write this run's figures into README.md and bench/README.md")
    args = parser.parse_args()
    lines = [f"machine: {machine()}, pyiso8583 {iso8583.__version__}",
             f"message: 0200 purchase, {len(PURCHASE.fields)} fields, "
             f"field 55 {len(ICC_DATA)} bytes"]
    for line in lines:
        print(line)
    ratios = []
    for name in PEERS:
        profile_lines, ratio = bench_profile(name, args.seconds)
        lines += profile_lines
        ratios.append(ratio)
    lines.append(f"codec vs pyiso8583: encode {min(r[0] for r in ratios):.2f}x "
                 f"decode {min(r[1] for r in ratios):.2f}x")
    print(lines[-1])
    if args.update_readme:
        update_readmes("codec", "python bench/codec.py", "".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
