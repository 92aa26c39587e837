"""terminal-mac.toml: generation, rotation with a grace period, refusal of a
loose file, and the daemon-side check that reads it (TerminalMacs)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from posgw.gateway.profiles import codec_for, load_profile
from posgw.gateway.security.keys import KeyFileError, LooseKeyFile
from posgw.gateway.security.mac_check import RELOAD_CHECK_S, TerminalMacs
from posgw.gateway.security.mac_keys import (
    DEFAULT_GRACE_S,
    MAC_KEY_FILE,
    MacKeyError,
    generate_mac_key,
    load_mac_keys,
    rotate_mac_key,
)
from posgw.protocols.iso8583.message import Message
from posgw.protocols.mac import MacAlgorithm, MacKey, sign_message
from posgw.simulator.shifted_clock import ShiftedClock

UNIONPAY = load_profile("unionpay-tpdu")
assert UNIONPAY.mac is not None
SPEC = UNIONPAY.mac
CODEC = codec_for(UNIONPAY)
TERMINAL = "T0000902"


def purchase(stan: str = "000001", amount: str = "000000001250") -> Message:
    return Message("0200", {3: "000000", 4: amount, 11: stan, 41: TERMINAL})


def signed(key: MacKey, message: Message) -> tuple[bytes, Message]:
    encoded = sign_message(CODEC, message, SPEC, key)
    return encoded, CODEC.decode(encoded)


def test_generated_key_file_is_0600_and_loads_back(tmp_path: Path) -> None:
    clock = ShiftedClock()
    entry = generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, clock.utc_now())
    assert stat.S_IMODE((tmp_path / MAC_KEY_FILE).stat().st_mode) == 0o600
    assert load_mac_keys(tmp_path) == {TERMINAL: entry}
    assert entry.current.key_id == 1 and entry.previous is None


def test_generated_des_keys_have_odd_parity(tmp_path: Path) -> None:
    entry = generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, ShiftedClock().utc_now())
    assert all(bin(byte).count("1") % 2 == 1 for byte in entry.current.key)


def test_a_terminal_gets_one_first_key_only(tmp_path: Path) -> None:
    now = ShiftedClock().utc_now()
    generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, now)
    with pytest.raises(MacKeyError, match="already has MAC key id 1; rotate it instead"):
        generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.AES_CMAC, now)


def test_rotation_keeps_the_old_key_as_previous_for_the_grace(tmp_path: Path) -> None:
    now = ShiftedClock().utc_now()
    first = generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, now)
    second = rotate_mac_key(tmp_path, TERMINAL, now, grace_s=600)
    assert second.current.key_id == 2 and second.current.key != first.current.key
    assert second.previous is not None and second.previous.key == first.current
    assert (second.previous.valid_until - second.created_at).total_seconds() == 600
    assert load_mac_keys(tmp_path)[TERMINAL] == second


def test_rotating_twice_forgets_the_oldest_key(tmp_path: Path) -> None:
    now = ShiftedClock().utc_now()
    generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, now)
    second = rotate_mac_key(tmp_path, TERMINAL, now)
    third = rotate_mac_key(tmp_path, TERMINAL, now)
    assert third.previous is not None and third.previous.key == second.current
    assert third.current.key_id == 3


def test_rotating_an_unknown_terminal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MacKeyError, match="has no MAC key; generate one first"):
        rotate_mac_key(tmp_path, TERMINAL, ShiftedClock().utc_now())


def test_no_file_means_no_terminal_has_a_key(tmp_path: Path) -> None:
    assert load_mac_keys(tmp_path) == {}


def test_a_file_others_may_read_is_refused(tmp_path: Path) -> None:
    generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, ShiftedClock().utc_now())
    os.chmod(tmp_path / MAC_KEY_FILE, 0o644)
    with pytest.raises(LooseKeyFile, match="mode 0644"):
        load_mac_keys(tmp_path)


@pytest.mark.parametrize(("text", "reason"), [
    ("[terminals.T1]\nalgorithm = \"des\"\nkey_id = 1\nkey = \"00\"\n"
     "created_at = 2025-01-01T00:00:00Z\n", "terminals.T1.algorithm: must be"),
    ("[terminals.T1]\nalgorithm = \"aes-cmac\"\nkey_id = 1\nkey = \"zz\"\n"
     "created_at = 2025-01-01T00:00:00Z\n", "terminals.T1.key: must be hex"),
    ("[terminals.T1]\nalgorithm = \"aes-cmac\"\nkey_id = 1\nkey = \"00112233\"\n"
     "created_at = 2025-01-01T00:00:00Z\n", "terminals.T1.key: aes-cmac takes an AES key"),
    ("[terminals.T1]\nalgorithm = \"aes-cmac\"\nkey_id = 0\n", "terminals.T1.key_id"),
    ("[terminals.T1]\nalgorithm = \"aes-cmac\"\nkey_id = 1\nkey = \"" + "00" * 16 + "\"\n"
     "created_at = \"yesterday\"\n", "terminals.T1.created_at: must be a UTC date-time"),
    ("[other]\n", "expected only [terminals.<id>] tables"),
    ("not toml [", "not TOML"),
])
def test_a_malformed_file_names_the_key_and_never_the_key_material(
        tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / MAC_KEY_FILE
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=reason.replace("[", r"\[")) as caught:
        load_mac_keys(tmp_path)
    assert "00112233" not in str(caught.value)


# --- TerminalMacs: what the daemon does with the file ----------------------------------


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


def loaded(tmp_path: Path, clock: ShiftedClock) -> TerminalMacs:
    macs = TerminalMacs(tmp_path, clock)
    macs.load()
    return macs


def test_a_terminal_without_a_key_is_not_checked(tmp_path: Path, clock: ShiftedClock) -> None:
    macs = loaded(tmp_path, clock)
    request = purchase()
    verdict = macs.verify(TERMINAL, SPEC, CODEC.encode(request), request)
    assert verdict.accepted and verdict.key is None


def test_a_good_mac_is_accepted_and_the_answer_uses_the_same_key(
        tmp_path: Path, clock: ShiftedClock) -> None:
    key = generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, clock.utc_now()).current
    verdict = loaded(tmp_path, clock).verify(TERMINAL, SPEC, *signed(key, purchase()))
    assert verdict.accepted and verdict.key == key


def test_a_missing_mac_is_refused_but_network_management_may_omit_it(
        tmp_path: Path, clock: ShiftedClock) -> None:
    generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, clock.utc_now())
    macs = loaded(tmp_path, clock)
    request, sign_on = purchase(), Message("0800", {11: "000002", 41: TERMINAL})
    refused = macs.verify(TERMINAL, SPEC, CODEC.encode(request), request)
    assert not refused.accepted and refused.reason == "no MAC (field 64)"
    assert macs.verify(TERMINAL, SPEC, CODEC.encode(sign_on), sign_on).accepted


def test_the_previous_key_verifies_during_the_grace_only(tmp_path: Path,
                                                         clock: ShiftedClock) -> None:
    old = generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, clock.utc_now()).current
    rotate_mac_key(tmp_path, TERMINAL, clock.utc_now(), grace_s=DEFAULT_GRACE_S)
    macs = loaded(tmp_path, clock)
    verdict = macs.verify(TERMINAL, SPEC, *signed(old, purchase()))
    assert verdict.accepted and verdict.key == old  # answered under the key it used
    clock.advance(DEFAULT_GRACE_S + 1)
    late = macs.verify(TERMINAL, SPEC, *signed(old, purchase("000002")))
    assert not late.accepted and late.reason == "MAC does not verify under key id 2"


def test_a_key_of_another_algorithm_than_the_profile_is_refused(
        tmp_path: Path, clock: ShiftedClock) -> None:
    generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.AES_CMAC, clock.utc_now())
    request = purchase()
    verdict = loaded(tmp_path, clock).verify(TERMINAL, SPEC, CODEC.encode(request), request)
    assert not verdict.accepted and "profile MACs with iso9797-1-alg3" in verdict.reason


def test_a_rotation_reaches_the_running_daemon_without_a_restart(
        tmp_path: Path, clock: ShiftedClock) -> None:
    generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, clock.utc_now())
    macs = loaded(tmp_path, clock)
    new = rotate_mac_key(tmp_path, TERMINAL, clock.utc_now(), grace_s=0).current
    clock.advance(RELOAD_CHECK_S)
    verdict = macs.verify(TERMINAL, SPEC, *signed(new, purchase()))
    assert verdict.accepted and verdict.key == new


def test_a_loosened_file_keeps_the_keys_in_memory_and_says_so(
        tmp_path: Path, clock: ShiftedClock, caplog: pytest.LogCaptureFixture) -> None:
    key = generate_mac_key(tmp_path, TERMINAL, MacAlgorithm.RETAIL, clock.utc_now()).current
    macs = loaded(tmp_path, clock)
    rotate_mac_key(tmp_path, TERMINAL, clock.utc_now(), grace_s=0)
    os.chmod(tmp_path / MAC_KEY_FILE, 0o644)
    clock.advance(RELOAD_CHECK_S)
    with caplog.at_level(logging.ERROR):
        assert macs.verify(TERMINAL, SPEC, *signed(key, purchase())).accepted
    assert "terminal MAC keys not reloaded" in caplog.text and "0644" in caplog.text


def test_failures_are_counted_per_terminal(tmp_path: Path, clock: ShiftedClock) -> None:
    macs = loaded(tmp_path, clock)
    macs.note_failure(TERMINAL)
    macs.note_failure(TERMINAL)
    macs.note_failure("T0000001")
    assert macs.failures == {TERMINAL: 2, "T0000001": 1} and macs.total_failures == 3
