"""One terminal line: frames in, pipeline, frames out; bad input never ends it.

A session decodes each received message with the line's profile and
answers it. What cannot be decoded gets a format-error response (30, or
the 1993 904) when its MTI can be read, and is otherwise only logged — by
length, position and a hash, never its bytes, which may hold a PAN
(DESIGN rule 6). A failure inside the pipeline answers 96 (system error)
and the session goes on: one terminal's bad message never ends another's
session or the daemon.
"""

from __future__ import annotations

import hashlib
import logging

from drivers.base import LinkClosed, Transport
from drivers.channel import FramedChannel
from gateway.pipeline import Pipeline
from gateway.profiles import codec_for
from gateway.terminals import TerminalLine, TerminalRegistry
from protocols.framing import Event, FrameRejected, build_link
from protocols.iso8583.errors import DecodeError, Iso8583Error
from protocols.iso8583.message import Message
from protocols.normalize import ResponseCategory, build_response, response_code_for

log = logging.getLogger(__name__)

#: STAN, RRN, auth code, response code, terminal id: what a terminal matches on.
_ESSENTIAL_FIELDS = frozenset({11, 37, 38, 39, 41})


class TerminalSession:
    def __init__(self, pipeline: Pipeline, line: TerminalLine,
                 registry: TerminalRegistry) -> None:
        self._pipeline = pipeline
        self._line = line
        self._registry = registry
        self._codec = codec_for(line.profile)
        self._terminal_ids: set[str] = set()
        self.answered = 0
        self.rejected = 0

    async def serve(self, transport: Transport) -> None:
        """Answer requests until the line closes (returns) or the task is cancelled."""
        link = build_link(self._line.profile.framing)
        try:
            async with FramedChannel(transport, link, on_event=self._link_event) as channel:
                while True:
                    received = await channel.receive()
                    reply = await self._answer(received.message)
                    if reply is not None:
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
        try:
            response = await self._pipeline.handle(request, self._line)
            self._note_terminal(request)
        except Exception:  # one bad request must not end the session
            log.exception("request %s from %s failed; answering system error", request.mti,
                          self._where())
            return self._encoded_or_none(request, ResponseCategory.SYSTEM_ERROR)
        self.answered += 1
        return self._encoded_response(response)

    def _encoded_response(self, response: Message) -> bytes | None:
        """The response as the profile encodes it. An echoed request field the
        dialect cannot encode (the decoder is laxer than the encoder about
        charsets) must not cost the terminal its answer: the answer then goes
        out with only the fields that identify it and the decision."""
        try:
            return self._codec.encode(response)
        except Iso8583Error as exc:
            log.warning("response %s for %s echoes a field the profile cannot encode (%s); "
                        "answering with its essential fields", response.mti, self._where(), exc)
        essential = {n: v for n, v in response.fields.items() if n in _ESSENTIAL_FIELDS}
        try:
            return self._codec.encode(Message(response.mti, essential))
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

    def _encoded_or_none(self, request: Message, category: ResponseCategory) -> bytes | None:
        version = 1987 if request.mti[0] == "0" else 1993
        echo = {n: v for n, v in request.fields.items() if n in (11, 41)}
        response = build_response(Message(request.mti, echo),
                                  response_code=response_code_for(category, version))
        try:
            return self._codec.encode(response)
        except Iso8583Error:
            log.warning("the %s response does not fit profile %s", category.value,
                        self._line.profile.name)
            return None

    def _note_terminal(self, request: Message) -> None:
        terminal_id = self._line.terminal_id or request.text(41).strip()
        if terminal_id:
            self._terminal_ids.add(terminal_id)

    def _where(self) -> str:
        ids = ",".join(sorted(self._terminal_ids)) or "?"
        return f"{self._line.driver} terminal {ids}"

    def _link_event(self, event: Event) -> None:
        if isinstance(event, FrameRejected):
            log.warning("%s: frame rejected: %s", self._where(), event.reason)
