"""Benchmark: what DKIM signing adds per message, RSA 2048 and Ed25519, beside building it unsigned.

Run: .venv/bin/python bench/dkim_cost.py [N]  (renders the example posts once, then builds N
messages unsigned, RSA-signed and Ed25519-signed in interleaved rounds; prints the cost of each).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.mail.dkim import DkimSigner, load_dkim_signer
from digest.mail.message import MessageTemplate
from digest.render.renderer import Renderer
from digest.selection.rules import latest_posts
from digest.settings import Settings
from digest.sources.jekyll.reader import load_posts

ROOT = Path(__file__).resolve().parent.parent


def _signers(folder: Path) -> dict[str, DkimSigner]:
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    keys = {
        "rsa2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    signers = {}
    for name, key in keys.items():
        path = folder / f"{name}.pem"
        path.write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
        signers[name] = load_dkim_signer("example.com", "news", path)
    return signers


def main(n: int = 500) -> None:
    settings = Settings.model_validate(
        {
            "site": {
                "title": "Example Blog",
                "url": "https://blog.example.com",
                "posts_dir": ROOT / "examples" / "_posts",
                "timezone": "Europe/London",
            },
            "email": {"from": "Example Blog <news@example.com>"},
            "web": {"base_url": "https://news.example.com", "secret": "x" * 32},
            "digests": {"weekly": {}},
        }
    )
    digest = settings.digest("weekly")
    as_of = datetime.fromisoformat("2026-11-27T12:00:00+00:00")
    posts = latest_posts(load_posts(settings.site).posts, digest, as_of, 20)
    renderer = Renderer(settings)
    segment = renderer.render_segment(digest, posts, as_of=as_of)
    template = MessageTemplate(settings, digest, segment, renderer)
    url = "https://news.example.com/unsubscribe/"
    recipients = [f"reader{i}@example.org" for i in range(n)]

    with tempfile.TemporaryDirectory() as folder:
        signers = _signers(Path(folder))

    def round_of(sign: Callable[[bytes], bytes] | None) -> float:
        start = time.perf_counter()
        for email in recipients:
            data = template.build(to_email=email, to_name="Ada", unsubscribe_url=url + email).data
            if sign is not None:
                sign(data)
        return (time.perf_counter() - start) / n

    ways: dict[str, Callable[[bytes], bytes] | None] = {"unsigned": None}
    ways.update({name: signer.sign for name, signer in signers.items()})
    times: dict[str, list[float]] = {name: [] for name in ways}
    # Interleaved rounds, medians: every way sees the same machine load.
    for _ in range(5):
        for name, sign in ways.items():
            times[name].append(round_of(sign))
    base = statistics.median(times["unsigned"])
    size = len(template.build(to_email="a@example.org", to_name="A", unsubscribe_url=url).data)
    print(f"posts: {len(posts)}, message ~{size} bytes, median of 5 rounds x {n} messages")
    for name in ways:
        cost = statistics.median(times[name])
        line = f"{name:9s} {cost * 1e3:7.3f} ms/message {1 / cost:8.0f} msg/s"
        if name != "unsigned":
            line += f"  (+{(cost - base) * 1e3:.2f} ms signing, {base / cost:.0%} of unsigned rate)"
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
