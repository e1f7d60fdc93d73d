"""Unsubscribe and confirmation tokens: round trip, tampering, weak secrets."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from digest.errors import BadInputError, ConfigError
from digest.settings import Settings
from digest.tokens import (
    CONFIRM_SALT,
    PREFERENCES_SALT,
    UNSUBSCRIBE_SALT,
    ConfirmLink,
    UnsubscribeLink,
    confirm_token,
    preferences_token,
    read_confirm_token,
    read_preferences_token,
    read_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)

SECRET = "s3cret-s3cret-s3cret-0123456789"
KEY = "k3y-0f-the-subscription"


def test_unsubscribe_token_round_trip() -> None:
    token = unsubscribe_token(SECRET, 42, "weekly", KEY)
    assert read_unsubscribe_token(SECRET, token) == UnsubscribeLink(42, "weekly", KEY)
    assert "/" not in token and "+" not in token and len(token) < 110


@pytest.mark.parametrize(
    ("subscriber_id", "digest", "key"),
    [(1, "weekly", KEY), (987654321, "Wöchentlich", "clé-ünï-9f3a"), (7, "d" * 300, KEY)],
)
def test_link_tokens_are_what_itsdangerous_makes_and_reads(
    subscriber_id: int, digest: str, key: str
) -> None:
    """The per-message signer skips itsdangerous's setup, not its format: its loads reads them,
    and for a payload zlib would not shrink the token is byte for byte the same."""
    reference = URLSafeSerializer(SECRET, salt=UNSUBSCRIBE_SALT)
    token = unsubscribe_token(SECRET, subscriber_id, digest, key)
    assert reference.loads(token) == [subscriber_id, digest, key]
    assert read_unsubscribe_token(SECRET, token) == UnsubscribeLink(subscriber_id, digest, key)
    if len(digest) < 100:  # not compressible: itsdangerous makes exactly this token
        assert token == reference.dumps([subscriber_id, digest, key])
    preferences = preferences_token(SECRET, subscriber_id, key)
    assert URLSafeSerializer(SECRET, salt=PREFERENCES_SALT).loads(preferences) == [
        subscriber_id,
        key,
    ]
    assert read_preferences_token(SECRET, preferences).subscriber_id == subscriber_id
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])


def test_an_old_id_only_unsubscribe_token_reads_without_a_key() -> None:
    old = URLSafeSerializer(SECRET, salt=UNSUBSCRIBE_SALT).dumps([42, "weekly"])
    assert read_unsubscribe_token(SECRET, old) == UnsubscribeLink(42, "weekly", None)


def test_unsubscribe_token_differs_per_subscriber_digest_and_key() -> None:
    tokens = {
        unsubscribe_token(SECRET, 1, "weekly", KEY),
        unsubscribe_token(SECRET, 2, "weekly", KEY),
        unsubscribe_token(SECRET, 1, "monthly", KEY),
        unsubscribe_token(SECRET, 1, "weekly", KEY + "2"),
    }
    assert len(tokens) == 4


def test_tampered_or_foreign_token_is_refused() -> None:
    token = unsubscribe_token(SECRET, 42, "weekly", KEY)
    signature = token.rpartition(".")[2]
    forged = unsubscribe_token(SECRET, 43, "weekly", KEY).rpartition(".")[0] + "." + signature
    with pytest.raises(BadInputError, match="invalid or was altered"):
        read_unsubscribe_token(SECRET, forged)
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET + "x", token)
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET, "garbage")


def test_salts_keep_purposes_apart() -> None:
    confirm = confirm_token(SECRET, 42, "nonce")
    with pytest.raises(BadInputError):
        read_unsubscribe_token(SECRET, confirm)
    with pytest.raises(BadInputError):
        read_confirm_token(SECRET, unsubscribe_token(SECRET, 42, "weekly", KEY))


def test_confirm_token_round_trip_and_expiry() -> None:
    token = confirm_token(SECRET, 7, "n0nce")
    assert read_confirm_token(SECRET, token) == ConfirmLink(7, "n0nce")
    with pytest.raises(BadInputError, match="expired"):
        read_confirm_token(SECRET, token, max_age=-1)


def test_an_old_id_only_confirm_token_is_refused() -> None:
    """It named a subscriber id, not one sign-up: it could confirm whoever holds the id now."""
    old = URLSafeTimedSerializer(SECRET, salt=CONFIRM_SALT).dumps(7)
    with pytest.raises(BadInputError, match="invalid"):
        read_confirm_token(SECRET, old)


@pytest.mark.parametrize("secret", ["", "short"])
def test_weak_secret_is_a_config_error_naming_the_variable(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.secret.*DIGEST_SECRET"):
        unsubscribe_token(secret, 1, "weekly", KEY)
    with pytest.raises(ConfigError, match="DIGEST_SECRET"):
        confirm_token(secret, 1, "nonce")


def test_weak_secret_loads_but_fails_when_a_url_is_needed() -> None:
    settings = Settings.model_validate(
        {
            "site": {"title": "Blog", "url": "https://blog.example.com"},
            "email": {"from": "news@example.com"},
            "web": {"base_url": "https://news.example.com/", "secret": ""},
        }
    )
    with pytest.raises(ConfigError):
        unsubscribe_url(settings, 1, "weekly", KEY)


def test_unsubscribe_url_uses_base_url() -> None:
    settings = Settings.model_validate(
        {
            "site": {"title": "Blog", "url": "https://blog.example.com"},
            "email": {"from": "news@example.com"},
            "web": {"base_url": "https://news.example.com/", "secret": SECRET},
        }
    )
    url = unsubscribe_url(settings, 5, "weekly", KEY)
    assert url.startswith("https://news.example.com/unsubscribe/")
    assert read_unsubscribe_token(SECRET, url.rsplit("/", 1)[1]) == UnsubscribeLink(
        5, "weekly", KEY
    )
