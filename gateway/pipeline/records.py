"""The rows one decided request writes, built from the normalized Transaction.

No row carries the PAN, track data or the PIN block (DESIGN rule 5): the
card is `pan_masked` + `pan_token`, a reversal advice only references. The
one exception is a frozen sale's PAN, AES-GCM sealed in the card vault
(`vault_row`), since its case may end in a return to the card.
"""

from __future__ import annotations

from datetime import datetime

from posgw.gateway.case_policy import CaseDeadlines
from posgw.gateway.pipeline.replay import RequestKey
from posgw.gateway.risk import Action, Decision
from posgw.gateway.security.vault import CardVault
from posgw.gateway.store.models import FreezeCase, LedgerEntry, UpstreamQueueItem
from posgw.gateway.store.rows import TableRow, table_row
from posgw.protocols.iso8583.message import Message
from posgw.protocols.normalize import Transaction


def ledger_row(tx: Transaction, key: RequestKey | None, *, status: str, event_id: str,
               token: str | None, rules: list[str], response: dict[str, str],
               occurred_at: datetime, original_event_id: str | None) -> TableRow:
    return table_row(
        LedgerEntry, event_id=event_id, terminal_id=tx.terminal_id or "",
        message_class=key.message_class if key else tx.mti[1],
        stan=tx.stan or "", transmission_time=key.transmission_time if key else "",
        merchant_id=tx.merchant_id or "", kind=tx.kind.value, status=status, mti=tx.mti,
        amount_minor=tx.amount_minor or 0, currency=tx.currency or "",
        pan_masked=tx.pan_masked, pan_token=token, rrn=tx.rrn, auth_code=tx.auth_code,
        response_code=tx.response_code, entry_mode=tx.entry_mode.value, risk=rules,
        response_fields=response, occurred_at=occurred_at,
        original_event_id=original_event_id)


def case_row(decision: Decision, tx: Transaction, token: str | None,
             now: datetime, deadlines: CaseDeadlines) -> TableRow | None:
    """The freeze case a frozen approval opens, with the evidence of each rule."""
    freezing = [hit for hit in decision.hits if hit.action is Action.FREEZE]
    if not freezing:
        return None
    first = freezing[0]
    evidence = {"rules": [{"rule": hit.rule, "reason": hit.reason,
                           "transactions": list(hit.evidence)} for hit in freezing],
                "first_response_due": deadlines.first_response_due_at.isoformat()}
    return table_row(FreezeCase, id=f"case-{first.evidence[-1]}",
                     terminal_id=tx.terminal_id or "", rule=first.rule, pan_token=token,
                     evidence=evidence, opened_at=now, updated_at=now,
                     first_response_due_at=deadlines.first_response_due_at,
                     expires_at=deadlines.expires_at)


def advice_row(reversal: Message, tx: Transaction, now: datetime) -> TableRow:
    """A reversal advice for the acquirer, sent by the advice sender when it is back."""
    fields = {str(n): v for n, v in reversal.fields.items() if isinstance(v, str)}
    return table_row(UpstreamQueueItem,
                     event_id=f"advice-{tx.terminal_id}-{tx.stan}-{now.timestamp()}",
                     terminal_id=tx.terminal_id or "", mti=reversal.mti, fields=fields,
                     created_at=now, next_attempt_at=now)


def vault_row(vault: CardVault | None, tx: Transaction, event_id: str,
              now: datetime) -> TableRow | None:
    """A frozen sale's PAN, sealed for a possible return to the card. The
    normalized card (from field 2, 35 or 55) is the one source of the digits."""
    if vault is None or tx.card is None:
        return None
    return vault.sealed_row(tx.card, event_id, now)
