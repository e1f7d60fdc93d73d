"""Signed, opaque tokens for the links in a digest: unsubscribe, preferences, confirmation.

message puts unsubscribe URLs into each email; web reads the tokens back when a link is used.
The signature proves the server made a token; what it names (a subscriber's current link key,
one issued confirmation) is checked against the database when it is used.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring as _json_string  # ensure_ascii=False's
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from digest.errors import BadInputError, ConfigError

if TYPE_CHECKING:
    from digest.settings import Settings

MIN_SECRET_LENGTH = 16
UNSUBSCRIBE_SALT = "unsubscribe"
CONFIRM_SALT = "confirm"
CONFIRM_MAX_AGE = 7 * 24 * 3600  # seconds a confirmation link stays valid
PREFERENCES_SALT = "preferences"
FORM_SALT = "preferences-form"
FORM_MAX_AGE = 24 * 3600  # seconds a preferences page's form may be sent after it was shown


def check_secret(secret: str) -> str:
    """The secret itself, or ConfigError when it is too weak to sign links."""
    if len(secret) < MIN_SECRET_LENGTH:
        what = "is empty" if not secret else f"is shorter than {MIN_SECRET_LENGTH} characters"
        raise ConfigError(
            f"web.secret {what}: set DIGEST_SECRET to a long random string "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


def ip_hash(secret: str, address: str) -> str:
    """A keyed hash of a client's IP address (web.secret is the key): enough to tell requests
    from one address apart and to show a record holds, never enough to recover the address."""
    digest = hmac.new(secret.encode(), b"client:" + address.encode(), "sha256")
    return digest.hexdigest()[:32]


# Serializers are cached because key derivation per token would cost more than the HMAC.
@lru_cache(maxsize=16)
def _unsubscribe_serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(check_secret(secret), salt=UNSUBSCRIBE_SALT)


@lru_cache(maxsize=16)
def _confirm_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(check_secret(secret), salt=CONFIRM_SALT)


@lru_cache(maxsize=16)
def _preferences_serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(check_secret(secret), salt=PREFERENCES_SALT)


@lru_cache(maxsize=16)
def _form_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(check_secret(secret), salt=FORM_SALT)


class LinkSigner:
    """`URLSafeSerializer.dumps` for the links of every message, without its per-call setup.

    itsdangerous derives the key, builds a Signer and tries zlib on every call; here the key is
    derived once, the payload never compressed (a few dozen bytes would not shrink) and its JSON
    written directly (a list of ints and strings: what json.dumps with itsdangerous's compact
    separators makes, without building an encoder per call).
    The token is the one itsdangerous makes for such a payload, and its `loads` reads it.
    """

    def __init__(self, serializer: URLSafeSerializer) -> None:
        signer = serializer.make_signer()
        self._mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
        self._sep = signer.sep if isinstance(signer.sep, bytes) else signer.sep.encode("ascii")

    def dumps(self, payload: list[int | str]) -> str:
        """The signed, URL-safe token of a list of ints and strings."""
        items = [
            _json_string(item) if isinstance(item, str) else str(int(item)) for item in payload
        ]
        data = ("[" + ",".join(items) + "]").encode("utf-8")
        value = base64.urlsafe_b64encode(data).rstrip(b"=")
        mac = self._mac.copy()
        mac.update(value)
        signature = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")
        return (value + self._sep + signature).decode("ascii")


@lru_cache(maxsize=16)
def _unsubscribe_signer(secret: str) -> LinkSigner:
    return LinkSigner(_unsubscribe_serializer(secret))


@lru_cache(maxsize=16)
def _preferences_signer(secret: str) -> LinkSigner:
    return LinkSigner(_preferences_serializer(secret))


class MessageLinks:
    """unsubscribe_url and preferences_url for every message of a send: the secret, the
    signers and the URLs' fixed starts looked up once, not twice a message."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.web.secret.get_secret_value()
        self._unsubscribe = _unsubscribe_signer(secret)
        self._preferences = _preferences_signer(secret)
        self._unsubscribe_at = f"{settings.web.base_url}/unsubscribe/"
        self._preferences_at = f"{settings.web.base_url}/preferences/"

    def unsubscribe_url(self, subscriber_id: int, digest: str, link_key: str) -> str:
        """unsubscribe_url(settings, subscriber_id, digest, link_key)."""
        return self._unsubscribe_at + self._unsubscribe.dumps([subscriber_id, digest, link_key])

    def preferences_url(self, subscriber_id: int, link_key: str) -> str:
        """preferences_url(settings, subscriber_id, link_key)."""
        return self._preferences_at + self._preferences.dumps([subscriber_id, link_key])


@dataclass(frozen=True)
class UnsubscribeLink:
    """What an unsubscribe token names: a subscriber, a digest, and the key it was bound to.

    link_key is None for a token made before link keys existed (id and digest only).
    """

    subscriber_id: int
    digest: str
    link_key: str | None


@dataclass(frozen=True)
class ConfirmLink:
    """What a confirmation token names: a subscriber and the nonce of one issued confirmation."""

    subscriber_id: int
    nonce: str


def unsubscribe_token(secret: str, subscriber_id: int, digest: str, link_key: str) -> str:
    """A URL-safe token for one subscriber, one digest and their current link key."""
    return _unsubscribe_signer(secret).dumps([subscriber_id, digest, link_key])


def read_unsubscribe_token(secret: str, token: str) -> UnsubscribeLink:
    """The link a token names, or BadInputError if forged or mangled."""
    try:
        payload = _unsubscribe_serializer(secret).loads(token)
    except BadSignature:
        raise BadInputError("the unsubscribe link is invalid or was altered") from None
    if isinstance(payload, list) and len(payload) in (2, 3) and _is_id(payload[0]):
        rest = payload[1:]
        if all(isinstance(part, str) and part for part in rest):
            key = rest[1] if len(rest) == 2 else None
            return UnsubscribeLink(payload[0], rest[0], key)
    raise BadInputError("the unsubscribe link is invalid or was altered")


def unsubscribe_url(settings: Settings, subscriber_id: int, digest: str, link_key: str) -> str:
    """The one-click unsubscribe URL for a subscriber of a digest."""
    secret = settings.web.secret.get_secret_value()
    token = unsubscribe_token(secret, subscriber_id, digest, link_key)
    return f"{settings.web.base_url}/unsubscribe/{token}"


@dataclass(frozen=True)
class PreferencesLink:
    """What a preferences token names: a subscriber and the link key it was bound to."""

    subscriber_id: int
    link_key: str


def preferences_token(secret: str, subscriber_id: int, link_key: str) -> str:
    """A URL-safe token for one subscriber's preferences page, bound to their link key."""
    return _preferences_signer(secret).dumps([subscriber_id, link_key])


def read_preferences_token(secret: str, token: str) -> PreferencesLink:
    """The subscriber a preferences token names, or BadInputError if forged or mangled."""
    try:
        payload = _preferences_serializer(secret).loads(token)
    except BadSignature:
        raise BadInputError("the preferences link is invalid or was altered") from None
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and _is_id(payload[0])
        and isinstance(payload[1], str)
        and payload[1]
    ):
        return PreferencesLink(payload[0], payload[1])
    raise BadInputError("the preferences link is invalid or was altered")


def preferences_url(settings: Settings, subscriber_id: int, link_key: str) -> str:
    """The "Manage your subscription" URL of one subscriber."""
    secret = settings.web.secret.get_secret_value()
    return (
        f"{settings.web.base_url}/preferences/{preferences_token(secret, subscriber_id, link_key)}"
    )


def form_token(secret: str, subscriber_id: int, link_key: str) -> str:
    """The preferences form's anti-forgery token: this subscriber, this link key, this time."""
    return _form_serializer(secret).dumps([subscriber_id, link_key])


def form_token_holds(
    secret: str, token: str, subscriber_id: int, link_key: str, *, max_age: int = FORM_MAX_AGE
) -> bool:
    """True when `token` was made by form_token for this subscriber and key within max_age."""
    try:
        payload = _form_serializer(secret).loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is one too
        return False
    return bool(payload == [subscriber_id, link_key])


def confirm_token(secret: str, subscriber_id: int, nonce: str) -> str:
    """A timestamped token for one issued confirmation of a sign-up."""
    return _confirm_serializer(secret).dumps([subscriber_id, nonce])


def read_confirm_token(secret: str, token: str, *, max_age: int = CONFIRM_MAX_AGE) -> ConfirmLink:
    """The confirmation a token names, or BadInputError if forged, expired or of the old kind."""
    try:
        payload = _confirm_serializer(secret).loads(token, max_age=max_age)
    except SignatureExpired:
        raise BadInputError("the confirmation link has expired; subscribe again") from None
    except BadSignature:
        raise BadInputError("the confirmation link is invalid or was altered") from None
    # An id alone (the old kind) is refused: it was bound to no particular sign-up.
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not _is_id(payload[0])
        or not isinstance(payload[1], str)
        or not payload[1]
    ):
        raise BadInputError("the confirmation link is invalid or was altered")
    return ConfirmLink(payload[0], payload[1])


def confirm_url(settings: Settings, subscriber_id: int, nonce: str) -> str:
    """The link that confirms one issued confirmation of a pending sign-up."""
    token = confirm_token(settings.web.secret.get_secret_value(), subscriber_id, nonce)
    return f"{settings.web.base_url}/confirm/{token}"


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
