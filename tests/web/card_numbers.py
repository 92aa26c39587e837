"""No card number in clear in what the console showed, logged or exported:
the scanner every console test can call on the pages it fetched, the
server's log and the audit CSV.

Two looks, both over raw bytes (HTML, log lines, CSV, a database file):

- the known PANs of the test (the simulator's cards, the demo's pool)
  anywhere: as digits, even inside a longer run, and hex-encoded
  (tests/e2e/harness.py `leaked`: track data and BCD too);
- any run of 13 to 19 digits that stands alone, printed as a card is
  (grouped by single spaces or dashes too): a card the test did not know of.
  A merchant id such as M00000000000001 is glued to its letter and is not
  one; RRNs (12 digits) are too short; a UUID (an event or case id) whose
  last groups happen to be all digits ("...-8901-234567890123") is not one.

A finding names its source, where it is, and the card's last 4 digits only,
so a failing test does not print the number it found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from posgw.simulator import cards as simulator_cards
from tests.e2e.harness import leaked

#: Card-number long, not glued to a letter or digit, optionally grouped.
STANDALONE_CARD_RUN = re.compile(rb"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")
#: Event and case ids: their dashed digit groups are not a grouped card.
UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: The simulator's named test cards: every console test over real traffic uses them.
SIMULATOR_PANS = frozenset(card.pan for card in simulator_cards.demo_cards())


@dataclass(frozen=True, slots=True)
class Finding:
    source: str
    position: int  # -1: somewhere (a known PAN found inside a longer run, or as hex)
    last4: str
    why: str

    def __str__(self) -> str:
        where = f" at byte {self.position}" if self.position >= 0 else ""
        return f"{self.source}{where}: {self.why} ending {self.last4}"


def findings_in(source: str, data: bytes, known: Iterable[str] = (), *,
                runs: bool = True) -> list[Finding]:
    """Card numbers in `data`: the known ones anywhere; with `runs` (not for
    binary files, whose bytes may spell digits), unknown ones standing alone."""
    pans = set(known) | SIMULATOR_PANS
    hits = leaked(data, pans) | {pan for pan in pans if pan.encode() in data}
    found = [Finding(source, -1, pan[-4:], "a known card number") for pan in sorted(hits)]
    ids = [match.span() for match in UUID.finditer(data)]
    for match in STANDALONE_CARD_RUN.finditer(data if runs else b""):
        if any(start <= match.start() and match.end() <= end for start, end in ids):
            continue
        digits = re.sub(rb"[ -]", b"", match.group()).decode()
        found.append(Finding(source, match.start(), digits[-4:],
                             f"a {len(digits)}-digit run"))
    return found


def assert_no_card_number(sources: Mapping[str, bytes], known: Iterable[str] = (), *,
                          binary: Mapping[str, bytes] | None = None) -> None:
    """Fails naming every finding (by last 4 digits) in every source; the
    `binary` ones (a database file) are searched for the known PANs only."""
    pans = list(known)
    assert sources, "nothing to scan"
    found = [finding for name, data in sources.items() for finding in
             findings_in(name, data, pans)]
    found += [finding for name, data in (binary or {}).items() for finding in
              findings_in(name, data, pans, runs=False)]
    assert not found, "card numbers in clear:\n" + "\n".join(map(str, found))
