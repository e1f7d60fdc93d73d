"""Signed, opaque tokens for the links in a digest: unsubscribe and subscription confirmation.

message puts unsubscribe URLs into each email; web reads the tokens back when a link is used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from digest.errors import BadInputError, ConfigError

if TYPE_CHECKING:
    from digest.config import Settings

MIN_SECRET_LENGTH = 16
UNSUBSCRIBE_SALT = "unsubscribe"
CONFIRM_SALT = "confirm"
CONFIRM_MAX_AGE = 7 * 24 * 3600  # seconds a confirmation link stays valid


def check_secret(secret: str) -> str:
    """The secret itself, or ConfigError when it is too weak to sign links."""
    if len(secret) < MIN_SECRET_LENGTH:
        what = "is empty" if not secret else f"is shorter than {MIN_SECRET_LENGTH} characters"
        raise ConfigError(
            f"web.secret {what}: set DIGEST_SECRET to a long random string "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


# Serializers are cached because key derivation per token would cost more than the HMAC.
@lru_cache(maxsize=16)
def _unsubscribe_serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(check_secret(secret), salt=UNSUBSCRIBE_SALT)


@lru_cache(maxsize=16)
def _confirm_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(check_secret(secret), salt=CONFIRM_SALT)


def unsubscribe_token(secret: str, subscriber_id: int, digest: str) -> str:
    """A URL-safe token naming one subscriber and one digest; it never expires."""
    return _unsubscribe_serializer(secret).dumps([subscriber_id, digest])


def read_unsubscribe_token(secret: str, token: str) -> tuple[int, str]:
    """(subscriber id, digest name) from a token, or BadInputError if forged or mangled."""
    try:
        payload = _unsubscribe_serializer(secret).loads(token)
    except BadSignature:
        raise BadInputError("the unsubscribe link is invalid or was altered") from None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not isinstance(payload[0], int)
        or isinstance(payload[0], bool)
        or not isinstance(payload[1], str)
    ):
        raise BadInputError("the unsubscribe link is invalid or was altered")
    return payload[0], payload[1]


def unsubscribe_url(settings: Settings, subscriber_id: int, digest: str) -> str:
    """The one-click unsubscribe URL for a subscriber of a digest."""
    token = unsubscribe_token(settings.web.secret.get_secret_value(), subscriber_id, digest)
    return f"{settings.web.base_url}/unsubscribe/{token}"


def confirm_token(secret: str, subscriber_id: int) -> str:
    """A timestamped token confirming a pending subscription."""
    return _confirm_serializer(secret).dumps(subscriber_id)


def read_confirm_token(secret: str, token: str, *, max_age: int = CONFIRM_MAX_AGE) -> int:
    """The subscriber id from a confirmation token, or BadInputError if forged or expired."""
    try:
        payload = _confirm_serializer(secret).loads(token, max_age=max_age)
    except SignatureExpired:
        raise BadInputError("the confirmation link has expired; subscribe again") from None
    except BadSignature:
        raise BadInputError("the confirmation link is invalid or was altered") from None
    if not isinstance(payload, int) or isinstance(payload, bool):
        raise BadInputError("the confirmation link is invalid or was altered")
    return payload


def confirm_url(settings: Settings, subscriber_id: int) -> str:
    """The link that activates a pending subscriber."""
    token = confirm_token(settings.web.secret.get_secret_value(), subscriber_id)
    return f"{settings.web.base_url}/confirm/{token}"
