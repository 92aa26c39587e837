"""The files an acquirer and a bank send after a business day, simulated: the
acquirer's settlement CSV (one line per approved transaction, with its fee)
and the bank's camt.053 statement (one credit per merchant-day, of the net).

Given what the acquirer approved and the merchants' fee plan, the clean
files match the center to the unit. `SettlementFaults` injects the wrong
deductions the center must find: another rate, a fixed fee per
transaction, a line settled twice, a credit that never arrives, a credit
that arrives late.

The CSV follows the layout in protocols/settlement.py; the camt.053 is
version .001.08 and valid against the official XSD (tests check it).
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

from lxml import etree

from posgw.protocols.currency import decimal_text
from posgw.protocols.settlement import ACQUIRER_CSV_COLUMNS, plan_fee_minor, remittance_text

CAMT053_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
# lxml takes None as the default namespace's prefix; lxml-stubs types prefixes as str.
_NSMAP = cast("dict[str, str]", {None: CAMT053_NAMESPACE})
#: The standard plan (issue 19): 0.6 % of the amount, no fixed fee per transaction.
STANDARD_RATE = Decimal("0.006")


@dataclass(frozen=True, slots=True)
class ApprovedSale:
    """One transaction the acquirer approved and will settle."""

    business_date: date
    merchant_id: str
    terminal_id: str
    rrn: str
    stan: str
    amount_minor: int  # negative: a return (refund, void)
    currency: str


@dataclass(frozen=True, slots=True)
class FeePlan:
    rate: Decimal = STANDARD_RATE
    fixed_fee_minor: int = 0


@dataclass(frozen=True, slots=True)
class SettlementFaults:
    """Wrong deductions to inject; the defaults inject none.

    `rate` and `fixed_fee_minor` replace the plan's for the merchants in
    `fee_merchants` (all when None)."""

    rate: Decimal | None = None  # e.g. Decimal("0.0062") where the plan says 0.006
    fixed_fee_minor: int = 0  # e.g. 100: a 1.00 surcharge per transaction
    fee_merchants: frozenset[str] | None = None
    duplicate_line: str | None = None  # the RRN whose line is settled twice
    missing_credit: str | None = None  # the merchant whose credits never arrive
    late_credit: tuple[str, int] | None = None  # (merchant, days later than due)


@dataclass(frozen=True, slots=True)
class SettledLine:
    """One line of the acquirer's CSV."""

    sale: ApprovedSale
    fee_minor: int

    @property
    def net_minor(self) -> int:
        return self.sale.amount_minor - self.fee_minor


@dataclass(frozen=True, slots=True)
class SimulatedCredit:
    """One credit the bank books to a merchant's account."""

    merchant_id: str
    account: str  # in clear: it is the bank's own statement
    business_date: date  # the day of sales it pays
    amount_minor: int
    currency: str
    value_date: date

    @property
    def entry_ref(self) -> str:
        # Stable across runs, so a file written twice is the same file.
        return f"SIMBANK-{self.merchant_id}-{self.business_date:%Y%m%d}-{self.currency}"


@dataclass(frozen=True, slots=True)
class SettlementFiles:
    acquirer_csv: Path
    camt053: Path
    lines: tuple[SettledLine, ...]
    credits: tuple[SimulatedCredit, ...]


def next_weekday(day: date) -> date:
    """T+1 working day without holidays: the default value date."""
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def simulated_account(merchant_id: str) -> str:
    """A merchant's settlement account number when none is given: 14 digits
    derived from its id (stable, so tests and the register agree)."""
    digest = hashlib.sha256(merchant_id.encode()).hexdigest()
    return "9704" + str(int(digest[:16], 16))[-10:].zfill(10)


def settle(sales: Iterable[ApprovedSale], plan: FeePlan = FeePlan(),
           faults: SettlementFaults = SettlementFaults()) -> list[SettledLine]:
    """The acquirer's lines for `sales`, with the plan's fees and the faults."""
    lines: list[SettledLine] = []
    for sale in sales:
        rate, fixed = plan.rate, plan.fixed_fee_minor
        if faults.fee_merchants is None or sale.merchant_id in faults.fee_merchants:
            rate = faults.rate if faults.rate is not None else rate
            fixed += faults.fixed_fee_minor if sale.amount_minor > 0 else 0
        line = SettledLine(sale, plan_fee_minor(sale.amount_minor, rate, fixed))
        lines.append(line)
        if sale.rrn == faults.duplicate_line:
            lines.append(line)
    return lines


def bank_credits(lines: Iterable[SettledLine], faults: SettlementFaults = SettlementFaults(),
                 accounts: Mapping[str, str] | None = None,
                 value_date: Callable[[date], date] = next_weekday) -> list[SimulatedCredit]:
    """One credit per merchant, business day and currency: the sum of the nets
    the acquirer settled (a duplicate line is paid twice, as a real one is)."""
    totals: dict[tuple[str, date, str], int] = defaultdict(int)
    for line in lines:
        sale = line.sale
        totals[(sale.merchant_id, sale.business_date, sale.currency)] += line.net_minor
    credits = []
    for (merchant, day, currency), net in sorted(totals.items()):
        if merchant == faults.missing_credit or net <= 0:
            continue
        due = value_date(day)
        if faults.late_credit and faults.late_credit[0] == merchant:
            due += timedelta(days=faults.late_credit[1])
        account = (accounts or {}).get(merchant) or simulated_account(merchant)
        credits.append(SimulatedCredit(merchant, account, day, net, currency, due))
    return credits


def write_acquirer_csv(path: Path, lines: Iterable[SettledLine]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(ACQUIRER_CSV_COLUMNS)
        for line in lines:
            sale = line.sale
            writer.writerow((
                sale.business_date.isoformat(), sale.merchant_id, sale.terminal_id, sale.rrn,
                sale.stan, decimal_text(sale.amount_minor, sale.currency),
                decimal_text(line.fee_minor, sale.currency),
                decimal_text(line.net_minor, sale.currency), sale.currency,
            ))


def write_settlement_files(directory: Path, sales: Iterable[ApprovedSale],
                           plan: FeePlan = FeePlan(),
                           faults: SettlementFaults = SettlementFaults(), *,
                           accounts: Mapping[str, str] | None = None,
                           value_date: Callable[[date], date] = next_weekday,
                           created: datetime) -> SettlementFiles:
    """Both files in `directory`, named after the first business day in them."""
    lines = settle(sales, plan, faults)
    credits = bank_credits(lines, faults, accounts, value_date)
    first = min((line.sale.business_date for line in lines), default=created.date())
    csv_path = directory / f"acquirer-settlement-{first:%Y%m%d}.csv"
    camt_path = directory / f"bank-camt053-{first:%Y%m%d}.xml"
    write_acquirer_csv(csv_path, lines)
    camt_path.write_bytes(camt053_bytes(credits, created=created))
    return SettlementFiles(csv_path, camt_path, tuple(lines), tuple(credits))


def camt053_bytes(credits: Iterable[SimulatedCredit], *, created: datetime) -> bytes:
    """A camt.053.001.08 message: one statement per account and currency."""
    by_account: dict[tuple[str, str], list[SimulatedCredit]] = defaultdict(list)
    for credit in credits:
        by_account[(credit.account, credit.currency)].append(credit)
    document = etree.Element(f"{{{CAMT053_NAMESPACE}}}Document", nsmap=_NSMAP)
    body = _child(document, "BkToCstmrStmt")
    stamp = created.isoformat(timespec="seconds")
    message_id = f"SIMBANK-STMT-{created:%Y%m%d%H%M%S}"
    header = _child(body, "GrpHdr")
    _child(header, "MsgId", message_id)
    _child(header, "CreDtTm", stamp)
    for number, ((account, currency), entries) in enumerate(sorted(by_account.items()), 1):
        _statement(body, f"{message_id}-{number}", stamp, account, currency, entries)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _statement(body: etree._Element, statement_id: str, stamp: str, account: str,
               currency: str, credits: list[SimulatedCredit]) -> None:
    statement = _child(body, "Stmt")
    _child(statement, "Id", statement_id)
    _child(statement, "CreDtTm", stamp)
    account_element = _child(statement, "Acct")
    _child(_child(_child(account_element, "Id"), "Othr"), "Id", account)
    _child(account_element, "Ccy", currency)
    # A settlement account swept daily: it opens at zero, closes at the day's credits.
    first = min(credit.value_date for credit in credits)
    last = max(credit.value_date for credit in credits)
    _balance(statement, "OPBD", 0, currency, first)
    _balance(statement, "CLBD", sum(c.amount_minor for c in credits), currency, last)
    for credit in sorted(credits, key=lambda c: (c.value_date, c.merchant_id)):
        _entry(statement, credit)


def _balance(statement: etree._Element, code: str, amount_minor: int, currency: str,
             day: date) -> None:
    balance = _child(statement, "Bal")
    _child(_child(_child(balance, "Tp"), "CdOrPrtry"), "Cd", code)
    _child(balance, "Amt", decimal_text(amount_minor, currency)).set("Ccy", currency)
    _child(balance, "CdtDbtInd", "CRDT")
    _child(_child(balance, "Dt"), "Dt", day.isoformat())


def _entry(statement: etree._Element, credit: SimulatedCredit) -> None:
    entry = _child(statement, "Ntry")
    _child(entry, "NtryRef", credit.entry_ref[:35])
    _child(entry, "Amt", decimal_text(credit.amount_minor, credit.currency)).set(
        "Ccy", credit.currency)
    _child(entry, "CdtDbtInd", "CRDT")
    _child(_child(entry, "Sts"), "Cd", "BOOK")
    _child(_child(entry, "BookgDt"), "Dt", credit.value_date.isoformat())
    _child(_child(entry, "ValDt"), "Dt", credit.value_date.isoformat())
    _child(entry, "AcctSvcrRef", credit.entry_ref[:35])
    domain = _child(_child(entry, "BkTxCd"), "Domn")
    _child(domain, "Cd", "PMNT")  # ISO bank transaction code: payments,
    family = _child(domain, "Fmly")
    _child(family, "Cd", "RCDT")  # received credit transfer,
    _child(family, "SubFmlyCd", "DMCT")  # domestic
    details = _child(_child(entry, "NtryDtls"), "TxDtls")
    refs = _child(details, "Refs")
    _child(refs, "EndToEndId", f"POSGW-{credit.merchant_id}-{credit.business_date:%Y%m%d}"[:35])
    _child(_child(details, "RmtInf"), "Ustrd",
           remittance_text(credit.merchant_id, credit.business_date))


def _child(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CAMT053_NAMESPACE}}}{name}")
    if text is not None:
        element.text = text
    return element
