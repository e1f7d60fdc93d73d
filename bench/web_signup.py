"""Benchmark: `digest serve` as an attacker meets it, over real loopback HTTP.

Run: .venv/bin/python bench/web_signup.py  (starts `digest serve` on a temporary SQLite site with
a capture SMTP server, then: 200 sign-up POSTs for one victim from 10 threads and the mails that
follow; POST /subscribe timing for an active address and for new ones, interleaved, medians and
spread; /healthz latency with 1,000 slow clients holding half-sent requests, loopback only).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller

from digest.demo import free_port
from digest.store import open_store
from digest.store.subscribers import add_subscriber


class Capture:
    """Counts what the relay receives, per recipient."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.received.extend(getattr(envelope, "rcpt_tos", []))
        return "250 OK"


def post(base: str, email: str) -> float:
    """One POST /subscribe; its wall time in milliseconds."""
    data = f"email={email}".encode()
    request = urllib.request.Request(
        base + "/subscribe",
        data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
        assert answer.status == 202
    return (time.perf_counter() - started) * 1000


def spread(values: list[float]) -> str:
    quartiles = statistics.quantiles(values, n=4)
    return f"median {statistics.median(values):.2f} ms (IQR {quartiles[0]:.2f}-{quartiles[2]:.2f})"


def main() -> None:
    capture = Capture()
    smtp_port = free_port()
    relay = Controller(capture, hostname="127.0.0.1", port=smtp_port)
    relay.start()
    root = Path(tempfile.mkdtemp(prefix="digest-web-bench-"))
    (root / "_posts").mkdir()
    config = {
        "site": {"title": "Bench", "url": "https://blog.example.com", "timezone": "UTC"},
        "database": {"url": f"sqlite:///{root / 'bench.db'}"},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "email": {"from": "news@example.com"},
        # One machine plays every client here: lift the per-client limit so the per-address
        # one (and the timing) is what is measured.
        "web": {"secret": "b" * 32, "signups_per_ip_per_hour": 100_000},
        "digests": {"weekly": {}},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    store = open_store(config["database"]["url"])  # type: ignore[index]
    add_subscriber(store, "active@example.com")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "digest", "--config", str(root / "config.yaml"), "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        stderr=subprocess.DEVNULL,
        cwd=root,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.1)

        started = time.perf_counter()
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda _: post(base, "victim@example.com"), range(200)))
        took = time.perf_counter() - started
        time.sleep(5)  # the mailer thread sends within seconds
        mails = capture.received.count("victim@example.com")
        print(f"200 POSTs for one victim (10 threads, {took:.1f} s): {mails} confirmation mail(s)")

        for i in range(20):  # warm up both paths
            post(base, "active@example.com")
            post(base, f"warm{i}@example.com")
        active: list[float] = []
        new: list[float] = []
        for i in range(50):
            active.append(post(base, "active@example.com"))
            new.append(post(base, f"new{i}@example.com"))
        print(f"POST /subscribe, active address: {spread(active)}")
        print(f"POST /subscribe, new address:    {spread(new)}")
        difference = statistics.median(new) - statistics.median(active)
        noise = statistics.stdev(active + new)
        print(f"difference of medians {difference:+.2f} ms; spread (stdev) {noise:.2f} ms")

        slow: list[socket.socket] = []
        for _ in range(1000):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\ne")
            slow.append(conn)
        times = []
        for _ in range(20):
            began = time.perf_counter()
            urllib.request.urlopen(base + "/healthz", timeout=5).read()
            times.append((time.perf_counter() - began) * 1000)
        print(f"/healthz with 1,000 slow clients: {spread(times)}, worst {max(times):.1f} ms")
        for conn in slow:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        store.dispose()
        relay.stop()


if __name__ == "__main__":
    main()
