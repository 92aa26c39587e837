"""One terminal line: frames in, pipeline, frames out; bad input never ends it.

A session decodes each received message with the line's profile and
answers it. What cannot be decoded gets a format-error response (30, or
the 1993 904) when its MTI can be read, and is otherwise only logged — by
length, position and a hash, never its bytes, which may hold a PAN
(DESIGN rule 6). A failure inside the pipeline answers 96 (system error)
and the session goes on: one terminal's bad message never ends another's
session or the daemon.

MAC (profiles with `[mac]`, terminals with a key in terminal-mac.toml): a
request whose MAC is bad, or missing where required, is answered with the
profile's MAC-error code and never reaches the pipeline; the answers to
such a terminal carry a MAC under the key its request verified with.
"""

from __future__ import annotations

import hashlib
import logging

from posgw.drivers.base import LinkClosed, Transport
from posgw.drivers.channel import FramedChannel
from posgw.drivers.tcp_link import TcpTransport
from posgw.gateway.logsetup import SESSION_PEER
from posgw.gateway.pipeline import Pipeline
from posgw.gateway.profiles import codec_for
from posgw.gateway.security.mac_check import UNKEYED, MacVerdict, TerminalMacs
from posgw.gateway.terminals import TerminalLine, TerminalRegistry
from posgw.protocols.framing import Event, FrameRejected, build_link
from posgw.protocols.iso8583.errors import DecodeError, EncodeError, Iso8583Error
from posgw.protocols.iso8583.message import Message
from posgw.protocols.mac import MacKey, sign_message, without_mac
from posgw.protocols.normalize import ResponseCategory, build_response, response_code_for

log = logging.getLogger(__name__)

#: STAN, RRN, auth code, response code, terminal id: what a terminal matches on.
_ESSENTIAL_FIELDS = frozenset({11, 37, 38, 39, 41})
_RESPONSE_CODE = 39


class TerminalSession:
    def __init__(self, pipeline: Pipeline, line: TerminalLine,
                 registry: TerminalRegistry, *, macs: TerminalMacs | None = None) -> None:
        self._pipeline = pipeline
        self._line = line
        self._registry = registry
        self._codec = codec_for(line.profile)
        self._macs = macs
        self._terminal_ids: set[str] = set()
        self._transport: Transport | None = None
        self.answered = 0
        self.rejected = 0
        self.mac_failures = 0  # this line's; TerminalMacs.failures counts per terminal

    async def serve(self, transport: Transport) -> None:
        """Answer requests until the line closes (returns) or the task is cancelled."""
        link = build_link(self._line.profile.framing)
        SESSION_PEER.set(transport.identity.key)  # this task's log lines name the peer
        self._transport = transport
        try:
            async with FramedChannel(transport, link, on_event=self._link_event,
                                     limits=self._line.sessions) as channel:
                while True:
                    received = await channel.receive()
                    started = self._pipeline.metrics.started()
                    reply = await self._answer(received.message)
                    if reply is not None:
                        self._pipeline.metrics.responded(started)
                        await channel.send(reply, received.envelope.reply())
        except LinkClosed:
            pass
        finally:
            self._registry.line_down(self._terminal_ids)

    async def _answer(self, data: bytes) -> bytes | None:
        try:
            request = self._codec.decode(data)
        except Iso8583Error as exc:
            return self._format_error(data, exc)
        if request.mti[2] not in "02":  # a response or an acknowledgement: nothing to answer
            log.info("unsolicited %s from %s ignored", request.mti, self._where())
            return None
        verdict = self._verify_mac(data, request)
        if not verdict.accepted:
            return self._mac_error(request, verdict)
        try:
            response = await self._pipeline.handle(self._without_mac(request), self._line)
            self._note_terminal(request)
        except Exception:  # one bad request must not end the session
            log.exception("request %s from %s failed; answering system error", request.mti,
                          self._where())
            return self._encoded_or_none(request, ResponseCategory.SYSTEM_ERROR, verdict.key)
        self.answered += 1
        return self._encoded_response(response, verdict.key)

    # -- MAC ----------------------------------------------------------------------------

    def _verify_mac(self, data: bytes, request: Message) -> MacVerdict:
        spec = self._line.profile.mac
        if spec is None or self._macs is None:
            return UNKEYED
        return self._macs.verify(self._terminal_of(request), spec, data, request)

    def _mac_error(self, request: Message, verdict: MacVerdict) -> bytes | None:
        """Counted, logged (never the MAC or the key) and answered with the profile's
        MAC-error code, without a MAC: the two ends evidently do not share a key."""
        spec = self._line.profile.mac
        assert spec is not None and self._macs is not None  # a refusal needs both
        terminal_id = self._terminal_of(request)
        self.mac_failures += 1
        self._macs.note_failure(terminal_id)
        self._pipeline.metrics.mac_failure(terminal_id or "?")
        log.warning("MAC refused: terminal %s, %s STAN %s: %s; answering %s",
                    terminal_id or "?", request.mti, request.text(11) or "-", verdict.reason,
                    spec.error_response)
        return self._short_answer(request, spec.error_response, "MAC error")

    def _without_mac(self, request: Message) -> Message:
        spec = self._line.profile.mac
        return request if spec is None else without_mac(request, spec)

    def _encode(self, message: Message, mac_key: MacKey | None) -> bytes:
        spec = self._line.profile.mac
        if mac_key is None or spec is None:
            return self._codec.encode(message)
        return sign_message(self._codec, message, spec, mac_key)

    def _terminal_of(self, request: Message) -> str:
        return self._line.terminal_id or request.text(41).strip()

    # -- answers ------------------------------------------------------------------------

    def _encoded_response(self, response: Message, mac_key: MacKey | None = None
                          ) -> bytes | None:
        """The response as the profile encodes it. An echoed request field the
        dialect cannot encode (the decoder is laxer than the encoder about
        charsets) must not cost the terminal its answer: the answer then goes
        out with only the fields that identify it and the decision."""
        try:
            return self._encode(response, mac_key)
        except Iso8583Error as exc:
            log.warning("response %s for %s echoes a field the profile cannot encode (%s); "
                        "answering with its essential fields", response.mti, self._where(), exc)
        essential = {n: v for n, v in response.fields.items() if n in _ESSENTIAL_FIELDS}
        return self._encoded_dropping_refused(Message(response.mti, essential), mac_key)

    def _encoded_dropping_refused(self, response: Message,
                                  mac_key: MacKey | None) -> bytes | None:
        """`response` encoded, less each echoed field the encoder refuses (a
        control byte in field 41); None if it refuses the response code itself."""
        fields = dict(response.fields)
        while True:
            try:
                return self._encode(Message(response.mti, fields), mac_key)
            except EncodeError as exc:
                refused = int(exc.field) if exc.field.isdigit() else None
                if refused not in fields or refused == _RESPONSE_CODE:
                    return None
                del fields[refused]
            except Iso8583Error:
                return None

    def _format_error(self, data: bytes, exc: Iso8583Error) -> bytes | None:
        self.rejected += 1
        digest = hashlib.sha256(data).hexdigest()[:16]
        where = f"field {exc.field} at byte {exc.offset}" if isinstance(exc, DecodeError) else ""
        log.warning("undecodable message from %s: %d bytes, sha256 %s, %s: %s", self._where(),
                    len(data), digest, where, getattr(exc, "reason", exc))
        try:
            mti = self._codec.read_mti(data)
        except Iso8583Error:
            return None  # not even an MTI: nothing to answer (the framer already ACKed)
        if mti[2] not in "02":
            return None
        return self._encoded_or_none(Message(mti, {}), ResponseCategory.FORMAT_ERROR)

    def _encoded_or_none(self, request: Message, category: ResponseCategory,
                         mac_key: MacKey | None = None) -> bytes | None:
        version = 1987 if request.mti[0] == "0" else 1993
        return self._short_answer(request, response_code_for(category, version),
                                  category.value, mac_key)

    def _short_answer(self, request: Message, code: str, what: str,
                      mac_key: MacKey | None = None) -> bytes | None:
        """`code` echoing only 11 and 41, for a request the pipeline did not answer."""
        echo = {n: v for n, v in request.fields.items() if n in (11, 41)}
        response = build_response(Message(request.mti, echo), response_code=code)
        encoded = self._encoded_dropping_refused(response, mac_key)
        if encoded is None:
            log.warning("the %s response does not fit profile %s", what,
                        self._line.profile.name)
        return encoded

    def _note_terminal(self, request: Message) -> None:
        """A terminal the registry knows was answered here: the line is its (a
        listener at its connection cap keeps this connection)."""
        terminal_id = self._line.terminal_id or request.text(41).strip()
        if not terminal_id or not self._registry.serves(terminal_id, self._line):
            return  # refused: neither its id nor its connection is worth keeping
        self._terminal_ids.add(terminal_id)
        if isinstance(self._transport, TcpTransport):
            self._transport.mark_identified()

    def _where(self) -> str:
        ids = ",".join(sorted(self._terminal_ids)) or "?"
        return f"{self._line.driver} terminal {ids}"

    def _link_event(self, event: Event) -> None:
        if isinstance(event, FrameRejected):
            log.warning("%s: frame rejected: %s", self._where(), event.reason)
