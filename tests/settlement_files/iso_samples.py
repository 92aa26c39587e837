"""The ISO 20022 business example of a camt.053 statement, typed as data.

The Bank-to-Customer Cash Management message definitions (ISO 20022, MDR
of 2009 for .001.02, Standards Release 2013 for .001.04) publish one example
statement: AAAA Banken (Sweden) reports account 50000000054910000003 of
FINPETROL for 18 October 2010, message AAAASESS-FP-STAT001: opening booked
balance 500,000 SEK, a credit of 105,678.50 from MUELLER (end-to-end id
MUELL/FINP/RA12345), a batch debit of 200,000 (20 salary payments,
FINP-0055), an FX credit of 30,000 SEK (3,255 EUR at 0.185), closing booked
balance 435,678.50 SEK. The values and structure below are the published
ones; a few optional elements of the published file (remittance details,
the transaction summary) are left out. No file is copied: facts from a
standard's published examples carry over as data we type.
"""

from __future__ import annotations

# From .001.03 on, a transaction's details carry its own amount (required
# there); .001.02 has no such element.
_CREDIT_TX_V04 = """
            <Amt Ccy="SEK">105678.50</Amt>
            <CdtDbtInd>CRDT</CdtDbtInd>"""
_FX_TX_V04 = """
            <Amt Ccy="EUR">3255</Amt>
            <CdtDbtInd>CRDT</CdtDbtInd>"""


def iso_business_example(version: str) -> bytes:
    """The example for camt.053.001.02 or camt.053.001.04."""
    credit_tx_amount = _CREDIT_TX_V04 if version == "04" else ""
    fx_tx_amount = _FX_TX_V04 if version == "04" else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr>
      <MsgId>AAAASESS-FP-STAT001</MsgId>
      <CreDtTm>2010-10-18T17:00:00+01:00</CreDtTm>
      <MsgPgntn>
        <PgNb>1</PgNb>
        <LastPgInd>true</LastPgInd>
      </MsgPgntn>
    </GrpHdr>
    <Stmt>
      <Id>AAAASESS-FP-STAT001</Id>
      <CreDtTm>2010-10-18T17:00:00+01:00</CreDtTm>
      <FrToDt>
        <FrDtTm>2010-10-18T08:00:00+01:00</FrDtTm>
        <ToDtTm>2010-10-18T17:00:00+01:00</ToDtTm>
      </FrToDt>
      <Acct>
        <Id>
          <Othr>
            <Id>50000000054910000003</Id>
          </Othr>
        </Id>
        <Ownr>
          <Nm>FINPETROL</Nm>
        </Ownr>
        <Svcr>
          <FinInstnId>
            <Nm>AAAA BANKEN</Nm>
            <PstlAdr>
              <Ctry>SE</Ctry>
            </PstlAdr>
          </FinInstnId>
        </Svcr>
      </Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="SEK">500000</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2010-10-15</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="SEK">435678.50</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt><Dt>2010-10-18</Dt></Dt>
      </Bal>
      <Ntry>
        <Amt Ccy="SEK">105678.50</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><DtTm>2010-10-18T13:15:00+01:00</DtTm></BookgDt>
        <ValDt><Dt>2010-10-18</Dt></ValDt>
        <AcctSvcrRef>AAAASESS-FP-CN_98765/01</AcctSvcrRef>
        <BkTxCd>
          <Domn><Cd>PAYM</Cd><Fmly><Cd>0001</Cd><SubFmlyCd>0005</SubFmlyCd></Fmly></Domn>
        </BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs>
              <EndToEndId>MUELL/FINP/RA12345</EndToEndId>
            </Refs>{credit_tx_amount}
            <RltdPties>
              <Dbtr><Nm>MUELLER</Nm></Dbtr>
            </RltdPties>
          </TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="SEK">200000</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><DtTm>2010-10-18T10:15:00+01:00</DtTm></BookgDt>
        <ValDt><Dt>2010-10-18</Dt></ValDt>
        <AcctSvcrRef>AAAASESS-FP-ACCR-01</AcctSvcrRef>
        <BkTxCd>
          <Domn><Cd>PAYM</Cd><Fmly><Cd>0001</Cd><SubFmlyCd>0003</SubFmlyCd></Fmly></Domn>
        </BkTxCd>
        <NtryDtls>
          <Btch>
            <MsgId>FINP-0055</MsgId>
            <PmtInfId>FINP-0055-001</PmtInfId>
            <NbOfTxs>20</NbOfTxs>
          </Btch>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="SEK">30000</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2010-10-18</Dt></BookgDt>
        <ValDt><Dt>2010-10-18</Dt></ValDt>
        <AcctSvcrRef>AAAASESS-FP-CONF-FX</AcctSvcrRef>
        <BkTxCd>
          <Domn><Cd>TREA</Cd><Fmly><Cd>0002</Cd><SubFmlyCd>0000</SubFmlyCd></Fmly></Domn>
        </BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs>
              <InstrId>FP-004567-FX</InstrId>
              <EndToEndId>AAAASS1085FINPSS</EndToEndId>
            </Refs>{fx_tx_amount}
            <AmtDtls>
              <CntrValAmt>
                <Amt Ccy="EUR">3255</Amt>
                <CcyXchg>
                  <SrcCcy>EUR</SrcCcy>
                  <XchgRate>0.185</XchgRate>
                </CcyXchg>
              </CntrValAmt>
            </AmtDtls>
          </TxDtls>
        </NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
""".encode()
