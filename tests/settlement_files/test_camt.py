"""camt.053/054: published samples read and validate, booked credits only,
and every refusal names what is wrong and where."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from posgw.center.settlement import camt
from posgw.center.settlement.camt import CamtError, official_schema, read_camt, safe_parser
from tests.settlement_files.iso_samples import iso_business_example


@pytest.mark.parametrize("version", ["02", "04"])
def test_iso_business_example_validates_against_the_official_xsd(version: str) -> None:
    document = etree.fromstring(iso_business_example(version), safe_parser())
    assert official_schema(f"camt.053.001.{version}").validate(document)


@pytest.mark.parametrize("version", ["02", "04"])
def test_iso_business_example_gives_its_two_booked_credits(version: str) -> None:
    credits = read_camt(iso_business_example(version))
    # The 200,000 SEK batch debit is left out; the two credits are in file order.
    assert [(c.entry_ref, c.amount_minor, c.currency, c.reference) for c in credits] == [
        ("AAAASESS-FP-CN_98765/01", 10_567_850, "SEK", "MUELL/FINP/RA12345"),
        ("AAAASESS-FP-CONF-FX", 3_000_000, "SEK", "AAAASS1085FINPSS"),
    ]
    first = credits[0]
    # Booked at 13:15 +01:00 on the 18th: the bank's own calendar day, not UTC's.
    assert (first.booking_date, first.value_date) == (date(2010, 10, 18), date(2010, 10, 18))
    assert first.account_masked == "5000************0003"
    assert first.merchant_id is None and first.settles_date is None


def test_pending_and_reversed_credits_are_not_credits() -> None:
    sample = iso_business_example("04")
    pending = sample.replace(b"<Sts>BOOK</Sts>", b"<Sts>PDNG</Sts>", 1)
    assert [c.entry_ref for c in read_camt(pending)] == ["AAAASESS-FP-CONF-FX"]
    reversed_ = sample.replace(b"<CdtDbtInd>CRDT</CdtDbtInd>\n        <Sts>",
                               b"<CdtDbtInd>CRDT</CdtDbtInd>\n        <RvslInd>true</RvslInd>"
                               b"\n        <Sts>", 1)
    assert [c.entry_ref for c in read_camt(reversed_)] == ["AAAASESS-FP-CONF-FX"]


def test_remittance_convention_names_merchant_and_business_day() -> None:
    # RmtInf follows RltdPties in the schema.
    sample = iso_business_example("04").replace(
        b"</RltdPties>",
        b"</RltdPties><RmtInf><Ustrd>POSGW SETTLE M0042 2010-10-15</Ustrd></RmtInf>", 1)
    first = read_camt(sample)[0]
    assert (first.merchant_id, first.settles_date) == ("M0042", date(2010, 10, 15))


def test_camt054_notification_is_read_by_its_namespace(tmp_path: Path) -> None:
    # A camt.054.001.08 notification built from the example's first credit.
    notification = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
  <BkToCstmrDbtCdtNtfctn>
    <GrpHdr><MsgId>AAAASESS-FP-NTFCTN01</MsgId><CreDtTm>2010-10-18T13:20:00+01:00</CreDtTm></GrpHdr>
    <Ntfctn>
      <Id>AAAASESS-FP-NTFCTN01</Id>
      <Acct><Id><IBAN>SE4550000000054910000003</IBAN></Id></Acct>
      <Ntry>
        <Amt Ccy="SEK">105678.50</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>2010-10-18</Dt></BookgDt>
        <ValDt><Dt>2010-10-19</Dt></ValDt>
        <AcctSvcrRef>AAAASESS-FP-CN_98765/01</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
      </Ntry>
    </Ntfctn>
  </BkToCstmrDbtCdtNtfctn>
</Document>
"""
    path = tmp_path / "camt054.xml"
    path.write_bytes(notification)
    (credit,) = read_camt(path)
    assert (credit.amount_minor, credit.value_date) == (10_567_850, date(2010, 10, 19))
    assert credit.account_masked == "SE45****************0003"
    assert credit.reference == ""


def test_schema_break_is_refused_with_element_path_and_line() -> None:
    broken = iso_business_example("04").replace(b"<Amt Ccy=\"SEK\">30000</Amt>",
                                                b"<Amt Ccy=\"SEK\">30,000</Amt>")
    with pytest.raises(CamtError) as refused:
        read_camt(broken)
    assert refused.value.path == "/Document/BkToCstmrStmt/Stmt/Ntry[3]/Amt"
    assert refused.value.line == broken[: broken.index(b">30,000<")].count(b"\n") + 1
    assert "camt.053.001.04 schema" in str(refused.value)


def test_missing_required_element_is_refused_at_the_element_that_follows() -> None:
    broken = iso_business_example("02").replace(b"<Sts>BOOK</Sts>", b"", 1)
    with pytest.raises(CamtError, match="Expected is one of") as refused:
        read_camt(broken)
    assert refused.value.path == "/Document/BkToCstmrStmt/Stmt/Ntry[1]/BookgDt"


def test_amount_finer_than_the_currency_is_refused() -> None:
    # Valid for the schema (up to 5 decimals), not for money in SEK.
    broken = iso_business_example("04").replace(b">105678.50</Amt>\n        <CdtDbtInd>",
                                                b">105678.505</Amt>\n        <CdtDbtInd>", 1)
    with pytest.raises(CamtError, match="finer than the SEK minor unit") as refused:
        read_camt(broken)
    assert refused.value.path == "/Document/BkToCstmrStmt/Stmt/Ntry[1]/Amt"


@pytest.mark.parametrize("namespace, reason", [
    (b"camt.053.001.01", "is not supported"),
    (b"camt.052.001.04", "not a camt.053 or camt.054 document"),
])
def test_other_messages_and_versions_are_refused(namespace: bytes, reason: str) -> None:
    other = iso_business_example("04").replace(b"camt.053.001.04", namespace)
    with pytest.raises(CamtError, match=reason):
        read_camt(other)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Document [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&lol3;</Document>
"""


def test_billion_laughs_is_refused_unexpanded() -> None:
    with pytest.raises(CamtError, match="DTD"):
        read_camt(BILLION_LAUGHS)


def test_external_entity_is_neither_read_nor_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://'
           + str(secret).encode() + b'">]>'
           b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
           b"<BkToCstmrStmt><GrpHdr><MsgId>&x;</MsgId></GrpHdr></BkToCstmrStmt></Document>")
    with pytest.raises(CamtError) as refused:
        read_camt(xxe)
    assert "TOPSECRET" not in str(refused.value)
    # And the parser itself, asked directly, leaves the entity unresolved.
    root = etree.fromstring(xxe, safe_parser())
    assert "TOPSECRET" not in etree.tostring(root).decode()


def test_oversized_file_is_refused_before_parsing(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camt, "MAX_CAMT_BYTES", 4096)  # the real cap is 32 MiB
    big = tmp_path / "big.xml"
    sample = iso_business_example("04")
    big.write_bytes(sample + b"<!--" + b"x" * 4096 + b"-->")
    with pytest.raises(CamtError, match="over the 4096 byte cap"):
        read_camt(big)
    assert len(sample) < 4096 and read_camt(sample)  # the same file under the cap reads


def test_not_xml_is_refused_with_its_line() -> None:
    with pytest.raises(CamtError, match="not well-formed") as refused:
        read_camt(b"<Document>\n<unclosed>\n</Document>")
    assert refused.value.line is not None
