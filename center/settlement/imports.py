"""Storing what a settlement file says, once.

A file is read whole first (center/settlement/acquirer_csv.py, camt.py):
a malformed one is refused there, with its line or element, before
anything is written. Then its rows go in with the file's own row in ONE
transaction. The same bytes again (the file's SHA-256) change nothing; a
line or credit already stored from another file is skipped by its key
(tables.py), so a report sent twice under another name is not settled twice.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import Table

from posgw.center.settlement.records import AcquirerLine, BankCredit
from posgw.center.settlement.tables import (
    AcquirerLineRow,
    BankCreditRow,
    Merchant,
    SettlementFile,
)
from posgw.center.writer import table_of

ACQUIRER_CSV, CAMT = "acquirer-csv", "camt"
#: Rows sent to the database per statement.
BATCH_ROWS = 5_000
_REFERENCE_DAY = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


@dataclass(frozen=True, slots=True)
class ImportResult:
    name: str
    sha256: str
    records: int  # in the file
    stored: int  # new rows (0 when the file was imported before)
    already_imported: bool


def file_sha256(data: bytes) -> str:
    """What identifies an imported file: the SHA-256 of the bytes read (once,
    by the reader's own bounded read: the hash is of what was parsed)."""
    return hashlib.sha256(data).hexdigest()


def store_acquirer_lines(conn: Connection, sha256: str, name: str,
                         lines: Sequence[AcquirerLine]) -> ImportResult:
    """Store a read acquirer report (the caller's transaction: commit or roll back)."""
    known = _already(conn, sha256, name, len(lines))
    if known is not None:
        return known
    file_id = _add_file(conn, sha256, ACQUIRER_CSV, name, len(lines))
    seen: Counter[tuple[str, str, str, str, int]] = Counter()
    rows = []
    for line in lines:
        key = (line.business_date.isoformat(), line.terminal_id, line.rrn, line.stan,
               line.amount_minor)
        seen[key] += 1
        rows.append({"file_id": file_id, "line_no": line.line_no, "occurrence": seen[key],
                     "business_date": key[0], "merchant_id": line.merchant_id,
                     "terminal_id": line.terminal_id, "rrn": line.rrn, "stan": line.stan,
                     "amount_minor": line.amount_minor, "fee_minor": line.fee_minor,
                     "net_minor": line.net_minor, "currency": line.currency})
    stored = _insert_new(conn, table_of(AcquirerLineRow), rows,
                         ("business_date", "terminal_id", "rrn", "stan", "amount_minor",
                          "occurrence"))
    return _finish(conn, file_id, name, sha256, len(lines), stored)


def store_bank_credits(conn: Connection, sha256: str, name: str,
                       credits: Sequence[BankCredit]) -> ImportResult:
    """Store a read camt.053/054 (the caller's transaction)."""
    known = _already(conn, sha256, name, len(credits))
    if known is not None:
        return known
    file_id = _add_file(conn, sha256, CAMT, name, len(credits))
    by_account = _merchant_of_account(conn)
    rows = [{"file_id": file_id, "entry_ref": credit.entry_ref,
             "account_masked": credit.account_masked,
             "merchant_id": credit.merchant_id or by_account.get(credit.account_masked),
             "business_date": (credit.settles_date.isoformat() if credit.settles_date
                               else reference_day(credit.reference)),
             "amount_minor": credit.amount_minor, "currency": credit.currency,
             "booking_date": credit.booking_date.isoformat(),
             "value_date": credit.value_date.isoformat(), "reference": credit.reference[:140]}
            for credit in credits]
    stored = _insert_new(conn, table_of(BankCreditRow), rows, ("account_masked", "entry_ref"))
    return _finish(conn, file_id, name, sha256, len(credits), stored)


def reference_day(reference: str) -> str | None:
    """The business day a credit's reference names (YYYY-MM-DD or YYYYMMDD), if any."""
    match = _REFERENCE_DAY.search(reference)
    if match is None:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3])).date().isoformat()
    except ValueError:
        return None


def _merchant_of_account(conn: Connection) -> dict[str, str]:
    """Masked account -> merchant, for the accounts only one merchant has
    (two accounts ending alike are ambiguous once masked: left unassigned)."""
    owners: dict[str, list[str]] = {}
    for merchant_id, account in conn.execute(select(Merchant.merchant_id,  # type: ignore[call-overload]
                                                    Merchant.account_masked)):
        owners.setdefault(account, []).append(merchant_id)
    return {account: ids[0] for account, ids in owners.items() if len(ids) == 1}


def _already(conn: Connection, sha256: str, name: str, records: int) -> ImportResult | None:
    table = table_of(SettlementFile)
    if conn.scalar(select(table.c.id).where(table.c.sha256 == sha256)) is None:
        return None
    return ImportResult(name, sha256, records, 0, already_imported=True)


def _add_file(conn: Connection, sha256: str, kind: str, name: str, records: int) -> int:
    table = table_of(SettlementFile)
    inserted = conn.execute(insert(table).values(
        sha256=sha256, kind=kind, name=name[:255], records=records, stored=0,
        imported_at=datetime.now(UTC)).returning(table.c.id))
    return int(inserted.scalar_one())


def _insert_new(conn: Connection, table: Table, rows: list[dict[str, Any]],
                key: Iterable[str]) -> int:
    """Insert, skipping rows whose key is already stored; returns how many
    went in (the rows that carry this file's id)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), BATCH_ROWS):
        statement = dialect.insert(table).on_conflict_do_nothing(index_elements=list(key))
        conn.execute(statement, rows[start:start + BATCH_ROWS])
    if not rows:
        return 0
    return int(conn.scalar(select(func.count()).select_from(table)
                           .where(table.c.file_id == rows[0]["file_id"])) or 0)


def _finish(conn: Connection, file_id: int, name: str, sha256: str, records: int,
            stored: int) -> ImportResult:
    table = table_of(SettlementFile)
    conn.execute(table.update().where(table.c.id == file_id).values(stored=stored))
    return ImportResult(name, sha256, records, stored, already_imported=False)
