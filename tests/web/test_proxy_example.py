"""The shipped nginx example sets X-Forwarded-For itself: a client cannot choose the address
its sign-ups are counted under (the header it sends is replaced, not passed along)."""

from __future__ import annotations

import re
from pathlib import Path

from digest.web.clients import client_address, trusted_networks

REPO = Path(__file__).parents[2]


def _forwarded_for(config: str) -> list[str]:
    return re.findall(r"proxy_set_header\s+X-Forwarded-For\s+([^;]+);", config)


def test_the_nginx_example_sets_the_clients_address_itself() -> None:
    for text in (
        (REPO / "contrib" / "nginx-digest.conf").read_text(encoding="utf-8"),
        (REPO / "docs" / "operations.md").read_text(encoding="utf-8"),
    ):
        assert _forwarded_for(text) == ["$remote_addr"]
        assert "proxy_pass http://127.0.0.1:8080;" in text


def test_behind_that_proxy_a_forged_header_does_not_change_the_address() -> None:
    proxies = trusted_networks(["127.0.0.1"])
    # What nginx sends with `proxy_set_header X-Forwarded-For $remote_addr;`, whatever the
    # client's own header said: the address it saw.
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert client_address(environ, proxies) == "203.0.113.9"
    # With $proxy_add_x_forwarded_for the client's "198.51.100.1" comes first and the
    # right-most hop still wins: the address nginx saw.
    environ["HTTP_X_FORWARDED_FOR"] = "198.51.100.1, 203.0.113.9"
    assert client_address(environ, proxies) == "203.0.113.9"
