"""The events bench/console_search.py searches: a month of a chain's payments,
signed and stored the way the ingest stores them.

500 terminals in 50 branches (two merchants each), 30 days ending
yesterday, 200,000 cards, VND amounts spread log-uniformly from 20,000 to
10,000,000 (a tenth in USD), and the statuses a center sees (mostly
settled; declines, undos, refunds, freezes). Each event is built by the
contract's own `tx_event`, signed with a real gateway key (one per branch
would change nothing the search reads: one key signs all), and written by
the ingest's own `PostgresWriter` in batches, so the rows, the partitions
and the indexes are exactly what `posgw center` would have made.
"""

from __future__ import annotations

import math
import queue
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from posgw.center.pg_writer import PostgresWriter
from posgw.center.rows import StoreRow
from posgw.gateway.security import GatewayKeys
from posgw.protocols.canonical_json import canonical_json
from posgw.protocols.contract import tx_event, tx_topic
from posgw.protocols.normalize import EntryMode, Transaction, TxKind

BRANCHES = 50
TERMINALS_PER_BRANCH = 10
MERCHANTS_PER_BRANCH = 2
CARDS = 200_000
DAYS = 30
BATCH = 2_000  # rows per writer batch: one INSERT ... SELECT FROM unnest
QUEUE_BATCHES = 4  # built batches waiting for the writer thread, at most
#: Issuer BINs of the cards (first 6 digits kept in the masked PAN).
BINS = ("476173", "411111", "522222", "545454", "621234", "970436", "356999")
#: (status, kind, response code, share): what a center's month holds.
OUTCOMES = (("settled", TxKind.PURCHASE, "00", 0.85), ("declined", TxKind.PURCHASE, "51", 0.06),
            ("frozen", TxKind.PURCHASE, "00", 0.03), ("reversed", TxKind.REVERSAL, "00", 0.02),
            ("voided", TxKind.VOID, "00", 0.02), ("refund", TxKind.REFUND, "00", 0.02))
ENTRY_MODES = (EntryMode.CHIP, EntryMode.CONTACTLESS, EntryMode.MAGSTRIPE)


@dataclass(frozen=True, slots=True)
class Card:
    pan_masked: str
    pan_token: str


@dataclass(frozen=True, slots=True)
class Place:
    branch_id: str
    gateway_id: str
    terminal_id: str
    merchant_id: str


def places() -> list[Place]:
    """The 500 terminals with their branch, gateway and merchant."""
    found = []
    for b in range(BRANCHES):
        branch = f"B{b + 1:03d}"
        for t in range(TERMINALS_PER_BRANCH):
            merchant = f"M{b * MERCHANTS_PER_BRANCH + t % MERCHANTS_PER_BRANCH + 1:014d}"
            found.append(Place(branch, f"gw-{branch.lower()}-1",
                               f"T{b * TERMINALS_PER_BRANCH + t + 1:07d}", merchant))
    return found


def cards(rng: random.Random) -> list[Card]:
    return [Card(f"{rng.choice(BINS)}******{rng.randrange(10_000):04d}",
                 f"{rng.getrandbits(256):064x}") for _ in range(CARDS)]


def first_day(today: datetime) -> datetime:
    """Midnight UTC 30 days before `today`: the month ends yesterday."""
    return today.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)


def store_rows(keys: GatewayKeys, count: int, seed: int, start: datetime) -> Iterator[StoreRow]:
    """`count` signed events in time order over DAYS days from `start`."""
    rng = random.Random(seed)
    terminals, pool = places(), cards(rng)
    weights = [share for *_, share in OUTCOMES]
    step = timedelta(days=DAYS) / count
    seqs: dict[str, int] = {}
    stans: dict[str, int] = {}
    day_counts: dict[str, int] = {}
    for n in range(count):
        at = start + step * n + timedelta(microseconds=rng.randrange(1000))
        place = rng.choice(terminals)
        status, kind, code, _ = rng.choices(OUTCOMES, weights)[0]
        card = rng.choice(pool)
        seqs[place.gateway_id] = seqs.get(place.gateway_id, 0) + 1
        stans[place.terminal_id] = stans.get(place.terminal_id, 0) % 999_999 + 1
        day = at.strftime("%y%j")
        day_counts[day] = day_counts.get(day, 0) + 1
        usd = rng.random() < 0.1
        amount = (round(math.exp(rng.uniform(math.log(100), math.log(50_000)))) if usd
                  else round(math.exp(rng.uniform(math.log(20), math.log(10_000)))) * 1000)
        tx = Transaction(kind=kind, mti="0210", version=1987, amount_minor=amount,
                         currency="USD" if usd else "VND", pan_masked=card.pan_masked,
                         stan=f"{stans[place.terminal_id]:06d}",
                         # YDDD and a day's serial: the shape acquirers give field 37.
                         rrn=f"{day[1:]}{day_counts[day]:08d}",
                         auth_code=f"{rng.randrange(1_000_000):06d}" if code == "00" else None,
                         response_code=code, entry_mode=rng.choice(ENTRY_MODES),
                         terminal_id=place.terminal_id, merchant_id=place.merchant_id)
        payload = tx_event(tx, status=status, event_id=f"ev-{place.gateway_id}-{n}",
                           branch_id=place.branch_id, gateway_id=place.gateway_id,
                           pan_token=card.pan_token, risk=["repeat_swipe"] if
                           status == "frozen" else [], occurred_at=at)
        signed = keys.signer.sign({**payload, "seq": seqs[place.gateway_id]})
        yield StoreRow(tx_topic("pos/v1", place.branch_id, place.terminal_id), signed,
                       canonical_json(signed))


def load(conninfo: str, rows: Iterator[StoreRow], progress: Callable[[int], None]) -> int:
    """Write `rows` with the ingest's writer; signing (here) and inserting
    (the writer thread, waiting on PostgreSQL) overlap. Returns rows stored."""
    batches: queue.Queue[list[StoreRow] | None] = queue.Queue(QUEUE_BATCHES)
    stored = [0]
    failed: list[BaseException] = []

    def write() -> None:
        writer = PostgresWriter(conninfo)
        try:
            while (batch := batches.get()) is not None:
                stored[0] += len(writer.write(batch, []))
                progress(len(batch))
        except BaseException as exc:  # handed to the main thread, raised there
            failed.append(exc)
            while batches.get() is not None:  # let the producer finish
                pass
        finally:
            writer.close()

    thread = threading.Thread(target=write, name="bench-writer")
    thread.start()
    try:
        batch: list[StoreRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                batches.put(batch)
                batch = []
        if batch:
            batches.put(batch)
    finally:
        batches.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return stored[0]
