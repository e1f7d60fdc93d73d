"""Unsubscribe and confirmation tokens: round trip, tampering, weak secrets."""

from __future__ import annotations

import pytest

from digest.config import Settings
from digest.errors import BadInputError, ConfigError
from digest.tokens import (
    confirm_token,
    read_confirm_token,
    read_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)

SECRET = "s3cret-s3cret-s3cret-0123456789"


def test_unsubscribe_token_round_trip() -> None:
    token = unsubscribe_token(SECRET, 42, "weekly")
    assert read_unsubscribe_token(SECRET, token) == (42, "weekly")
    assert "/" not in token and "+" not in token and len(token) < 80


def test_unsubscribe_token_differs_per_subscriber_and_digest() -> None:
    tokens = {
        unsubscribe_token(SECRET, 1, "weekly"),
        unsubscribe_token(SECRET, 2, "weekly"),
        unsubscribe_token(SECRET, 1, "monthly"),
    }
    assert len(tokens) == 3


def test_tampered_or_foreign_token_is_refused() -> None:
    token = unsubscribe_token(SECRET, 42, "weekly")
    signature = token.rpartition(".")[2]
    forged = unsubscribe_token(SECRET, 43, "weekly").rpartition(".")[0] + "." + signature
    with pytest.raises(BadInputError, match="invalid or was altered"):
        read_unsubscribe_token(SECRET, forged)
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET + "x", token)
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET, "garbage")


def test_salts_keep_purposes_apart() -> None:
    confirm = confirm_token(SECRET, 42)
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET, confirm)
    with pytest.raises(BadInputError):
        read_confirm_token(SECRET, unsubscribe_token(SECRET, 42, "weekly"))


def test_confirm_token_round_trip_and_expiry() -> None:
    token = confirm_token(SECRET, 7)
    assert read_confirm_token(SECRET, token) == 7
    with pytest.raises(BadInputError, match="expired"):
        read_confirm_token(SECRET, token, max_age=-1)


@pytest.mark.parametrize("secret", ["", "short"])
def test_weak_secret_is_a_config_error_naming_the_variable(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.secret.*DIGEST_SECRET"):
        unsubscribe_token(secret, 1, "weekly")
    with pytest.raises(ConfigError, match="DIGEST_SECRET"):
        confirm_token(secret, 1)


def test_weak_secret_loads_but_fails_when_a_url_is_needed() -> None:
    settings = Settings.model_validate(
        {
            "site": {"title": "Blog", "url": "https://blog.example.com"},
            "email": {"from": "news@example.com"},
            "web": {"base_url": "https://news.example.com/", "secret": ""},
        }
    )
    with pytest.raises(ConfigError):
        unsubscribe_url(settings, 1, "weekly")


def test_unsubscribe_url_uses_base_url() -> None:
    settings = Settings.model_validate(
        {
            "site": {"title": "Blog", "url": "https://blog.example.com"},
            "email": {"from": "news@example.com"},
            "web": {"base_url": "https://news.example.com/", "secret": SECRET},
        }
    )
    url = unsubscribe_url(settings, 5, "weekly")
    assert url.startswith("https://news.example.com/unsubscribe/")
    assert read_unsubscribe_token(SECRET, url.rsplit("/", 1)[1]) == (5, "weekly")
