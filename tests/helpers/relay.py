"""A real SMTP relay (aiosmtpd on a free loopback port) that answers as a test tells it to.

Refuse a recipient and still say 354 to DATA, answer 421 or 454 to the n-th MAIL, DATA or final
dot, hang after a final dot, close every connection after N messages, stop and start again.
Each accepted message is kept with its arrival time (time.monotonic) for rate checks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.demo import free_port

HANG = "hang"  # an at_dot answer: keep the message, then say nothing for `hang` seconds
Answer = Callable[[int], str | None]  # the n-th command (1-based, over the relay's life) -> reply


@dataclass(frozen=True)
class Arrival:
    mail_from: str
    to: str
    data: bytes
    at: float  # time.monotonic() when the final dot was read


@dataclass
class Script:
    """What the relay answers instead of accepting; None everywhere: a plain relay."""

    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_despite_refusal: bool = False  # 354 to DATA even when no recipient was accepted
    at_mail: Answer | None = None
    at_data: Answer | None = None  # the DATA command, before any 354
    at_dot: Answer | None = None  # the final dot: HANG, or a reply (the message is not kept)
    close_after: int = 0  # close a connection right after its N-th accepted message
    hang: float = 2.0


@dataclass
class ScriptedRelay:
    """The handler: counts commands, follows the script, keeps what it accepts."""

    script: Script = field(default_factory=Script)
    arrivals: list[Arrival] = field(default_factory=list)
    # What came after a 354 that followed a refusal: the client must send the final dot alone.
    bodies_after_refusal: list[bytes] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # every scripted (non-250) reply given
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, int] = field(default_factory=dict)
    closed: int = 0  # connections the relay closed by script (close_after)

    def count(self, command: str) -> int:
        with self.lock:
            n = self.counts[command] = self.counts.get(command, 0) + 1
            return n

    def scripted(self, answer: Answer | None, command: str) -> str | None:
        reply = answer(self.count(command)) if answer is not None else None
        if reply is not None and reply != HANG:
            with self.lock:
                self.replies.append(reply)
        return reply

    def to(self, address: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.to.lower() == address.lower()]

    @property
    def accepted(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def most_in_a_second(self, addresses: Callable[[str], bool] = lambda _: True) -> int:
        """The most messages (to addresses passing the filter) that arrived in any 1 s window."""
        with self.lock:
            times = sorted(a.at for a in self.arrivals if addresses(a.to))
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def rate(self, addresses: Callable[[str], bool] = lambda _: True) -> float:
        """Messages a second from the first arrival to the last (for reports, never asserted)."""
        with self.lock:
            times = sorted(a.at for a in self.arrivals if addresses(a.to))
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self.script.refuse_rcpt.get(address.lower())
        if refusal is not None:
            with self.lock:
                self.replies.append(refusal)
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.scripted(self.script.at_dot, "dot")
        if reply is not None and reply != HANG:
            if reply.startswith("421"):
                _close_soon(server)
            return reply
        data = envelope.original_content or b""
        assert isinstance(data, bytes)
        now = time.monotonic()
        with self.lock:
            for to in envelope.rcpt_tos:
                self.arrivals.append(Arrival(str(envelope.mail_from), to, bytes(data), now))
        if reply == HANG:
            await asyncio.sleep(self.script.hang)
        per_connection = getattr(session, "accepted", 0) + 1
        session.accepted = per_connection  # type: ignore[attr-defined]
        if self.script.close_after and per_connection >= self.script.close_after:
            with self.lock:
                self.closed += 1
            _close_soon(server)
        return "250 2.0.0 Ok: queued"


def _close_soon(server: SMTP) -> None:
    """Close the connection once the reply being pushed has been written."""
    transport = server.transport
    if transport is not None:
        asyncio.get_running_loop().call_soon(transport.close)


class _ScriptedSMTP(SMTP):
    """aiosmtpd's session, with the answers aiosmtpd itself would never give."""

    @property
    def relay(self) -> ScriptedRelay:
        handler = self.event_handler
        assert isinstance(handler, ScriptedRelay)
        return handler

    async def _scripted(self, answer: Answer | None, command: str) -> bool:
        reply = self.relay.scripted(answer, command)
        if reply is None:
            return False
        await self.push(reply)
        if reply.startswith("421"):
            _close_soon(self)
        return True

    async def smtp_MAIL(self, arg: str | None) -> None:
        valid = self.session is not None and self.session.host_name and arg
        if valid and await self._scripted(self.relay.script.at_mail, "mail"):
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.mail_from:
            if await self._scripted(self.relay.script.at_data, "data"):
                return
            if not self.envelope.rcpt_tos and self.relay.script.data_despite_refusal:
                await self._take_data_for_nobody()
                return
        await super().smtp_DATA(arg)

    async def _take_data_for_nobody(self) -> None:
        """354 with no accepted recipient (RFC 2920 allows it): read to the dot, then refuse."""
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b".\r\n":
                break
            lines.append(line)
        with self.relay.lock:
            self.relay.bodies_after_refusal.append(b"".join(lines))
        self._set_post_data_state()
        await self.push("554 5.5.1 Error: no valid recipients")


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _ScriptedSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class Relay:
    host: str
    port: int
    handler: ScriptedRelay
    controller: Controller

    def stop(self) -> None:
        self.controller.stop()

    def start(self) -> None:
        """Listen again on the same port (after stop)."""
        self.controller = _make_controller(self.handler, self.port)
        self.controller.start()


def _make_controller(handler: ScriptedRelay, port: int) -> Controller:
    return _Controller(
        handler, hostname="127.0.0.1", port=port, decode_data=False, enable_SMTPUTF8=True
    )


@contextmanager
def scripted_relay(script: Script | None = None) -> Iterator[Relay]:
    """A relay on 127.0.0.1 and a free port, following `script`, stopped at the end."""
    handler = ScriptedRelay(script or Script())
    port = free_port()
    relay = Relay("127.0.0.1", port, handler, _make_controller(handler, port))
    relay.controller.start()
    try:
        yield relay
    finally:
        with suppress(AssertionError, RuntimeError):  # stopped already (a test stopped it)
            relay.controller.stop()
