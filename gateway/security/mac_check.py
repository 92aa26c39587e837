"""Terminal MACs at run time: verify a request, pick the key for its answer,
count the failures.

The daemon loads `terminal-mac.toml` from its keys directory at start (no
file: no terminal has a key, nothing is checked) and looks at the file
again every few seconds, so `posgw keys mac rotate` takes effect without a
restart; a file that no longer loads leaves the keys in memory as they were
(logged). A terminal is MAC-checked only when it has a key here and its
profile has a `[mac]` table.

`failures` counts refused requests by terminal id and `total_failures` all
of them, for whoever reports metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from posgw.drivers.clock import Clock
from posgw.gateway.security.keys import KeyFileError
from posgw.gateway.security.mac_keys import TerminalMacKeys, load_mac_keys, mac_key_path
from posgw.protocols.iso8583.message import Message
from posgw.protocols.mac import MacCheck, MacKey, MacSpec, check_message

log = logging.getLogger(__name__)

#: How often the key file is looked at for a change (one stat call).
RELOAD_CHECK_S = 5.0
_NETWORK_MANAGEMENT = "8"  # MTI class x8xx: sign-on, echo, key exchange


@dataclass(frozen=True, slots=True)
class MacVerdict:
    """Whether a request may go on, and the key its answer is MACed under."""

    accepted: bool
    key: MacKey | None = None  # None: the answer goes out without a MAC
    reason: str = ""  # why it was refused; never the MAC or the key


UNKEYED = MacVerdict(True)


class TerminalMacs:
    """Empty until `load()`; `directory` None: keys given here only, no file."""

    def __init__(self, directory: str | Path | None, clock: Clock,
                 keys: dict[str, TerminalMacKeys] | None = None) -> None:
        self._path = mac_key_path(directory) if directory is not None else None
        self._clock = clock
        self._keys = keys if keys is not None else {}
        self._stamp: tuple[int, int, int] | None = None
        self._next_look = clock.monotonic() + RELOAD_CHECK_S
        self.failures: Counter[str] = Counter()

    def load(self) -> int:
        """Read the key file now; the number of terminals with a key. Raises
        KeyFileError when the file exists but cannot be used (at start-up that
        stops the daemon, as a bad token or signing key does)."""
        if self._path is not None:
            stamp = self._file_stamp()
            self._keys, self._stamp = load_mac_keys(self._path.parent), stamp
        return len(self._keys)

    @property
    def total_failures(self) -> int:
        return self.failures.total()

    def keys_for(self, terminal_id: str) -> TerminalMacKeys | None:
        self._maybe_reload()
        return self._keys.get(terminal_id)

    def verify(self, terminal_id: str, spec: MacSpec, encoded: bytes,
               request: Message) -> MacVerdict:
        """Check `request` (decoded from `encoded`) from `terminal_id`."""
        keys = self.keys_for(terminal_id)
        if keys is None:
            return UNKEYED
        if keys.current.algorithm != spec.algorithm:
            return MacVerdict(False, reason=f"its key is {keys.current.algorithm} but the "
                                            f"profile MACs with {spec.algorithm}")
        if spec.field not in request.fields:
            if spec.required and request.mti[1] != _NETWORK_MANAGEMENT:
                return MacVerdict(False, reason=f"no MAC (field {spec.field})")
            return MacVerdict(True, keys.current)
        return self._against_keys(keys, spec, encoded, request)

    def note_failure(self, terminal_id: str) -> None:
        self.failures[terminal_id or "?"] += 1

    def _against_keys(self, keys: TerminalMacKeys, spec: MacSpec, encoded: bytes,
                      request: Message) -> MacVerdict:
        for key in keys.candidates(self._clock.utc_now()):
            check = check_message(encoded, request, spec, key)
            if check is MacCheck.VALID:
                if key is not keys.current:
                    log.info("terminal %s still MACs with its previous key id %d",
                             keys.terminal_id, key.key_id)
                return MacVerdict(True, key)
            if check is not MacCheck.MISMATCH:
                return MacVerdict(False, reason=f"MAC {check} (field {spec.field})")
        return MacVerdict(False, reason=f"MAC does not verify under key id "
                                        f"{keys.current.key_id}")

    def _maybe_reload(self) -> None:
        if self._path is None or self._clock.monotonic() < self._next_look:
            return
        self._next_look = self._clock.monotonic() + RELOAD_CHECK_S
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        try:
            keys = load_mac_keys(self._path.parent)
        except KeyFileError as exc:
            log.error("terminal MAC keys not reloaded, the previous ones stay: %s", exc)
            return
        self._keys, self._stamp = keys, stamp
        log.warning("terminal MAC keys reloaded from %s: %d terminals", self._path, len(keys))

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            info = self._path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)
