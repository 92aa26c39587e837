"""Canonical JSON, payload signatures and PAN tokens."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import given
from hypothesis import strategies as st

from posgw.gateway.security import KeyFileError, PanTokenizer, generate_keys, load_keys
from posgw.gateway.security.keys import GatewayKeys
from posgw.protocols.canonical_json import CanonicalJsonError, canonical_json, without_signature
from posgw.protocols.normalize import CardNumber

PAN = "4761739001010010"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> GatewayKeys:
    """One key pair for the module: hypothesis runs a test many times."""
    return load_keys(generate_keys(tmp_path_factory.mktemp("keys")).parent)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    expected = '{"a":[true,null,"é"],"b":1}'.encode()
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == expected


def test_canonical_json_refuses_floats_with_their_path() -> None:
    with pytest.raises(CanonicalJsonError, match=r"\$\.amount"):
        canonical_json({"amount": 12.5})


_scalars = st.none() | st.booleans() | st.integers() | st.text()
_json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@given(_json_values)
def test_canonical_json_round_trips_and_is_stable(value: object) -> None:
    encoded = canonical_json(value)
    decoded = json.loads(encoded)
    assert decoded == value
    assert canonical_json(decoded) == encoded


@given(st.lists(st.text(min_size=1, alphabet="abc"), min_size=1, max_size=4),
       st.floats(allow_nan=False))
def test_a_float_anywhere_is_refused_with_its_path(keys: list[str], number: float) -> None:
    nested: object = number
    for key in reversed(keys):
        nested = {key: [nested]}
    with pytest.raises(CanonicalJsonError, match="floats are not allowed") as refused:
        canonical_json(nested)
    assert str(refused.value).startswith("$." + keys[0] + "[0]")


def test_keys_are_written_private_and_round_trip_a_signature(tmp_path) -> None:
    public_path = generate_keys(tmp_path)
    for name in ("token.key", "signing.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    keys = load_keys(tmp_path)
    signed = keys.signer.sign({"event_id": "e1", "amount_minor": 1250})
    public = load_pem_public_key(public_path.read_bytes())
    public.verify(base64.b64decode(signed["signature"]),  # type: ignore[union-attr]
                  canonical_json(without_signature(signed)))


@given(payload=st.dictionaries(st.text(), _json_values, max_size=6))
def test_sealed_bytes_are_the_signed_payload_and_verify(keys: GatewayKeys,
                                                        payload: dict[str, object]) -> None:
    decoded = json.loads(keys.signer.seal(payload))
    assert decoded == keys.signer.sign(payload)
    public = load_pem_public_key(keys.public_key_pem)
    public.verify(base64.b64decode(decoded["signature"]),  # type: ignore[union-attr]
                  canonical_json(without_signature(decoded)))


def test_sealing_replaces_an_old_signature_and_refuses_floats(keys: GatewayKeys) -> None:
    signer = keys.signer
    resealed = json.loads(signer.seal({"a": 1, "signature": "old"}))
    assert resealed["signature"] != "old" and resealed == signer.sign({"a": 1})
    with pytest.raises(CanonicalJsonError):
        signer.seal({"amount": 1.5})


def test_tampered_payload_fails_verification(tmp_path) -> None:
    keys = load_keys(generate_keys(tmp_path).parent)
    signed = keys.signer.sign({"event_id": "e1", "amount_minor": 1250})
    public = load_pem_public_key(keys.public_key_pem)
    tampered = {**signed, "amount_minor": 1}
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(tampered["signature"]),  # type: ignore[union-attr]
                      canonical_json(without_signature(tampered)))


def test_generate_keys_refuses_to_overwrite(tmp_path) -> None:
    generate_keys(tmp_path)
    with pytest.raises(KeyFileError, match="already exists"):
        generate_keys(tmp_path)


def test_token_is_stable_for_one_key_and_differs_across_keys() -> None:
    card = CardNumber(PAN)
    first, again = PanTokenizer(b"k" * 32), PanTokenizer(b"k" * 32)
    other = PanTokenizer(b"x" * 32)
    assert first.token(card) == again.token(card)
    assert first.token(card) != other.token(card)
    assert len(first.token(card)) == 32 and PAN not in first.token(card)


def test_short_token_key_error_does_not_show_any_card_data() -> None:
    with pytest.raises(ValueError) as info:
        PanTokenizer(b"short")
    assert PAN not in str(info.value)
