"""A DNS server on loopback (dnslib) answering from a dict of records, for `digest doctor` tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import PTR, QTYPE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from digest.demo import free_port

Records = dict[tuple[str, str], list[str]]  # (name, "TXT" | "PTR") -> values


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, records: Records) -> None:
        self.records = records

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        for value in self.records.get((name, kind), []):
            if kind == "TXT":
                chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
                rdata: Any = TXT([c.encode() for c in chunks])
            else:
                rdata = PTR(value)
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=60))
        return reply


@contextmanager
def dns_server(records: Records) -> Iterator[str]:
    """Serve `records` over UDP on 127.0.0.1; yields "127.0.0.1:PORT" for --nameserver."""
    port = free_port()
    server = DNSServer(
        _Resolver(records), port=port, address="127.0.0.1", logger=DNSLogger("-request,-reply")
    )
    server.start_thread()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()
        server.server.server_close()  # stop() leaves the socket open
