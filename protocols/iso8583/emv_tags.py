"""Names of common EMV tags, the tags that carry card data, and a safe dump.

Names follow EMV Book 3 Annex A and the scheme additions that show up in
field 55 (Mastercard 9F6B, 9F6E; UnionPay DF31, 9F61), checked against
public tag references (emvlab.org, EMVCo contactless books via vendor
manuals). `describe_tlv` is what `posgw decode` prints for a TLV field:
values of `SENSITIVE_TAGS` go through `protocols.redact`, never in clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, TypedDict

from posgw.protocols.redact import mask_pan, mask_secret, mask_track


class TlvObject(Protocol):
    """What `describe_tlv` reads of a data object (`tlv.TlvNode` is one).

    Named by shape, not imported: `tlv` reads `SENSITIVE_TAGS` from here,
    and a module pair that imports each other is a loop.
    """

    @property
    def tag(self) -> str: ...
    @property
    def value(self) -> bytes: ...
    @property
    def children(self) -> Sequence[TlvObject]: ...
    @property
    def is_constructed(self) -> bool: ...


EMV_TAG_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "42": "Issuer Identification Number",
        "4F": "Application Identifier (AID) - card",
        "50": "Application Label",
        "56": "Track 1 Data",
        "57": "Track 2 Equivalent Data",
        "5A": "Application PAN",
        "5F20": "Cardholder Name",
        "5F24": "Application Expiration Date",
        "5F25": "Application Effective Date",
        "5F28": "Issuer Country Code",
        "5F2A": "Transaction Currency Code",
        "5F2D": "Language Preference",
        "5F30": "Service Code",
        "5F34": "Application PAN Sequence Number",
        "5F36": "Transaction Currency Exponent",
        "5F53": "International Bank Account Number (IBAN)",
        "61": "Application Template",
        "6F": "File Control Information (FCI) Template",
        "70": "Record Template",
        "71": "Issuer Script Template 1",
        "72": "Issuer Script Template 2",
        "77": "Response Message Template Format 2",
        "80": "Response Message Template Format 1",
        "82": "Application Interchange Profile",
        "84": "Dedicated File (DF) Name",
        "86": "Issuer Script Command",
        "87": "Application Priority Indicator",
        "88": "Short File Identifier (SFI)",
        "89": "Authorisation Code",
        "8A": "Authorisation Response Code",
        "8C": "Card Risk Management Data Object List 1 (CDOL1)",
        "8D": "Card Risk Management Data Object List 2 (CDOL2)",
        "8E": "Cardholder Verification Method (CVM) List",
        "8F": "Certification Authority Public Key Index",
        "91": "Issuer Authentication Data",
        "94": "Application File Locator (AFL)",
        "95": "Terminal Verification Results (TVR)",
        "99": "Transaction PIN Data",
        "9A": "Transaction Date",
        "9B": "Transaction Status Information (TSI)",
        "9C": "Transaction Type",
        "9F01": "Acquirer Identifier",
        "9F02": "Amount, Authorised (Numeric)",
        "9F03": "Amount, Other (Numeric)",
        "9F06": "Application Identifier (AID) - terminal",
        "9F07": "Application Usage Control",
        "9F08": "Application Version Number - card",
        "9F09": "Application Version Number - terminal",
        "9F0B": "Cardholder Name Extended",
        "9F0D": "Issuer Action Code - Default",
        "9F0E": "Issuer Action Code - Denial",
        "9F0F": "Issuer Action Code - Online",
        "9F10": "Issuer Application Data (IAD)",
        "9F11": "Issuer Code Table Index",
        "9F12": "Application Preferred Name",
        "9F15": "Merchant Category Code",
        "9F16": "Merchant Identifier",
        "9F17": "PIN Try Counter",
        "9F1A": "Terminal Country Code",
        "9F1C": "Terminal Identification",
        "9F1E": "Interface Device (IFD) Serial Number",
        "9F1F": "Track 1 Discretionary Data",
        "9F20": "Track 2 Discretionary Data",
        "9F21": "Transaction Time",
        "9F26": "Application Cryptogram (AC)",
        "9F27": "Cryptogram Information Data (CID)",
        "9F33": "Terminal Capabilities",
        "9F34": "Cardholder Verification Method (CVM) Results",
        "9F35": "Terminal Type",
        "9F36": "Application Transaction Counter (ATC)",
        "9F37": "Unpredictable Number",
        "9F39": "Point-of-Service (POS) Entry Mode",
        "9F40": "Additional Terminal Capabilities",
        "9F41": "Transaction Sequence Counter",
        "9F42": "Application Currency Code",
        "9F4E": "Merchant Name and Location",
        "9F53": "Transaction Category Code",
        "9F5B": "Issuer Script Results",
        "9F61": "Cardholder ID Number (UnionPay)",
        "9F66": "Terminal Transaction Qualifiers (TTQ)",
        "9F6B": "Track 2 Data (contactless)",
        "9F6C": "Card Transaction Qualifiers (CTQ)",
        "9F6E": "Form Factor Indicator / Third Party Data",
        "9F7C": "Customer Exclusive Data",
        "DF31": "Issuer Script Results (UnionPay)",
    }
)

#: Tags whose value is card data that must never be stored or shown in
#: clear: PAN (5A), track images (56, 57, 9F6B) and their discretionary data
#: (9F1F, 9F20), cardholder name and identity (5F20, 9F0B, 9F61), the account
#: as IBAN (5F53), expiry (5F24, like field 14) and PIN data (99).
SENSITIVE_TAGS: frozenset[str] = frozenset(
    {"56", "57", "5A", "5F20", "5F24", "5F53", "99", "9F0B", "9F1F", "9F20", "9F61", "9F6B"}
)

#: Tags holding track 2 in its packed-digit form, separator nibble 'D'.
_TRACK2_TAGS = frozenset({"57", "9F6B"})


_PRIVATE_CLASS_NIBBLES = frozenset("CDEF")


class TlvDescription(TypedDict):
    """One TLV object as the decode dump shows it (JSON-ready)."""

    tag: str
    name: str
    length: int
    value: str
    children: list[TlvDescription]


def tag_name(tag: str) -> str:
    """The EMV name of `tag`, or a label saying it is unknown or proprietary."""
    tag = tag.upper()
    name = EMV_TAG_NAMES.get(tag)
    if name is not None:
        return name
    # b8 b7 = 11 in the first byte: private class, which EMV leaves to
    # schemes and vendors (DFxx, FFxx, ...).
    return "Proprietary" if tag[:1] in _PRIVATE_CLASS_NIBBLES else "Unknown"


def display_value(tag: str, value: bytes) -> str:
    """Hex of `value`, or its masked form when `tag` carries card data."""
    digits = value.hex().upper()
    tag = tag.upper()
    if tag not in SENSITIVE_TAGS:
        return digits
    if tag == "5A":
        # Packed BCD, padded with 'F' to a whole byte.
        return mask_pan(digits.rstrip("F"))
    if tag in _TRACK2_TAGS:
        return mask_track(digits.rstrip("F"))
    return mask_secret(value)


def describe_tlv(nodes: Iterable[TlvObject]) -> list[TlvDescription]:
    """Each node as tag, name, length and display value, children nested.

    A template's own value is left empty: it is only its children's bytes
    and may hold card data that the children show masked.
    """
    described: list[TlvDescription] = []
    for node in nodes:
        template = bool(node.children) or node.is_constructed
        described.append(
            TlvDescription(
                tag=node.tag,
                name=tag_name(node.tag),
                length=len(node.value),
                value="" if template else display_value(node.tag, node.value),
                children=describe_tlv(node.children),
            )
        )
    return described
