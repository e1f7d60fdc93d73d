"""The relay's rules as config gives them and as the one reply map reads them (pure parts)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from digest.settings import Settings
from digest.settings.smtp import Rate, SmtpSettings, parse_rates
from digest.smtp.rate_limit import Slowdown, destination_of
from digest.smtp.replies import throttling

BASE: dict[str, Any] = {
    "site": {"title": "T", "url": "https://blog.example.com"},
    "email": {"from": "news@example.com"},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, ()),
        (14, (Rate(14, 1, "14/s"),)),
        ("200/s", (Rate(200, 1, "200/s"),)),
        ("600/min", (Rate(600, 60, "600/min"),)),
        ("10000/h", (Rate(10000, 3600, "10000/h"),)),
        ("10000/day", (Rate(10000, 86400, "10000/day"),)),
        (["14/s", "10000/day"], (Rate(14, 1, "14/s"), Rate(10000, 86400, "10000/day"))),
    ],
)
def test_rate_limit_forms(value: object, expected: tuple[Rate, ...]) -> None:
    assert SmtpSettings.model_validate({"rate_limit": value}).rate_limit == expected


@pytest.mark.parametrize("value", ["fast", "10/fortnight", True, "-3/s", None])
def test_a_bad_rate_is_an_error_naming_the_form(value: object) -> None:
    with pytest.raises(ValueError, match="is not a rate like 200/s, 600/min or 10000/day"):
        parse_rates(value)


def test_smtp_as_a_list_of_named_relays_and_a_digest_picking_one() -> None:
    settings = Settings.model_validate(
        {
            **BASE,
            "smtp": [
                {"name": "ses", "host": "email-smtp.example.com", "rate_limit": "14/s"},
                {"name": "backup", "host": "backup.example.com", "failover_after": "2m"},
            ],
            "digests": {"weekly": {}, "daily": {"relay": "backup"}},
        }
    )
    assert settings.smtp.name == "ses" and settings.smtp.host == "email-smtp.example.com"
    assert [r.name for r in settings.relay_chain(settings.digest("weekly"))] == ["ses", "backup"]
    assert [r.name for r in settings.relay_chain(settings.digest("daily"))] == ["backup", "ses"]
    assert settings.relays[1].failover_after.total_seconds() == 120
    assert settings.relays[0].failback_after == timedelta(minutes=10)  # the default
    single = Settings.model_validate({**BASE, "smtp": {"host": "relay.example.com"}})
    assert [r.name for r in single.relays] == ["default"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30s", timedelta(seconds=30)), ("1h", timedelta(hours=1)), (None, None)],
)
def test_failback_after_is_a_duration_or_null(value: object, expected: timedelta | None) -> None:
    smtp = [{"name": "a", "host": "a.example.com", "failback_after": value}, {"name": "b"}]
    settings = Settings.model_validate({**BASE, "smtp": smtp})
    assert settings.relays[0].failback_after == expected


@pytest.mark.parametrize("value", ["0s", "0", "soon"])
def test_failback_after_that_is_not_a_wait_names_the_key(value: str) -> None:
    smtp = [{"name": "a", "failback_after": value}, {"name": "b"}]
    with pytest.raises(ValidationError, match="failback_after"):
        Settings.model_validate({**BASE, "smtp": smtp})


@pytest.mark.parametrize(
    ("smtp", "digests", "message"),
    [
        ([{"host": "a"}], {}, "each relay of a list needs a name"),
        ([{"name": "a"}, {"name": "a"}], {}, "two relays are named 'a'"),
        ([{"name": "a"}], {"weekly": {"relay": "b"}}, "no relay named 'b' under smtp"),
    ],
)
def test_relay_list_mistakes_name_the_key(smtp: Any, digests: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({**BASE, "smtp": smtp, "digests": digests})


def test_destination_groups_and_domains() -> None:
    keys = {"google", "microsoft", "yahoo", "apple", "example.org"}
    assert destination_of("a@gmail.com", keys) == "google"
    assert destination_of("a@GoogleMail.com", keys) == "google"
    assert destination_of("a@hotmail.co.uk", keys) == "microsoft"
    assert destination_of("a@live.fr", keys) == "microsoft"
    assert destination_of("a@yahoo.co.jp", keys) == "yahoo"
    assert destination_of("a@me.com", keys) == "apple"
    assert destination_of("a@example.org", keys) == "example.org"
    assert destination_of("a@example.com", keys) is None
    assert destination_of("a@gmail.com", {"microsoft"}) is None


def test_a_connections_backoff_doubles_with_its_own_throttles_not_the_others() -> None:
    now = [0.0]
    slow = Slowdown(4, clock=lambda: now[0], jitter=lambda: 0.5)
    for streak in range(1, 10):  # one connection hears nine in a row: 0.1 s, 0.2 s, ... 25.6 s
        backoff = slow.throttled("454", streak=streak)
        assert backoff == pytest.approx(Slowdown.FIRST_BACKOFF * 2 ** (streak - 1))
    assert slow.level == 9 and slow.allowed() == 1  # the process slowed down as a whole
    # Another connection's first throttle: its own first backoff, not the burst's 25.6 s.
    assert slow.throttled("454", streak=1) == pytest.approx(Slowdown.FIRST_BACKOFF)
    assert slow.throttled("454", streak=40) == pytest.approx(Slowdown.MAX_BACKOFF)


def test_slowdown_climbs_back_when_no_reply_comes() -> None:
    """The connections still allowed have nothing left to send while the others wait for
    their turn: with no reply at all the level climbs back with time, or they would wait
    forever (a whole-suite run hung there for minutes)."""
    now = [0.0]
    slow = Slowdown(4, clock=lambda: now[0], jitter=lambda: 0.5)
    for _ in range(40):
        slow.clean()
    slow.throttled("454")
    slow.throttled("454")
    assert slow.allowed() == 1
    now[0] += Slowdown.RELAX_AFTER / 2
    assert slow.allowed() == 1  # not yet
    now[0] += Slowdown.RELAX_AFTER / 2
    assert slow.allowed() == 2
    now[0] += Slowdown.RELAX_AFTER
    assert slow.allowed() == 4 and slow.rate is None
    slow.throttled("454")  # throttled again: down at once, and the quiet starts over
    assert slow.allowed() == 2
    now[0] += Slowdown.CLIMB_EVERY * 0.8
    slow.clean()  # a reply (too soon to climb on it): the quiet starts over
    now[0] += Slowdown.RELAX_AFTER * 0.9
    assert slow.allowed() == 2
    now[0] += Slowdown.RELAX_AFTER * 0.1
    assert slow.allowed() == 4


@pytest.mark.parametrize(
    ("code", "text", "stage", "throttles"),
    [
        (421, b"4.7.0 Try again later, closing connection", "rcpt", True),
        (454, b"4.7.0 Throttling", "data", True),
        (452, b"4.3.1 Insufficient system storage", "mail", True),
        (451, b"4.7.1 Too many messages, slow down", "mail", True),
        (450, b"4.7.0 rate limited", "data", True),
        (451, b"4.7.1 Greylisted, try again later", "rcpt", False),  # the recipient's
        (452, b"4.5.3 Too many recipients", "rcpt", False),
        (451, b"4.3.0 Local error", "data", False),
        (550, b"5.7.1 Rejected", "data", False),
    ],
)
def test_which_replies_are_throttling(code: int, text: bytes, stage: Any, throttles: bool) -> None:
    assert throttling(code, text, stage) is throttles


def test_slowdown_halves_then_climbs_back() -> None:
    now = [0.0]
    slow = Slowdown(4, clock=lambda: now[0], jitter=lambda: 0.5)
    for _ in range(40):  # 40 messages in the last second
        slow.clean()
    assert slow.throttled("454 4.7.0 Throttling") == pytest.approx(Slowdown.FIRST_BACKOFF)
    assert (slow.rate, slow.allowed()) == (20.0, 2)
    assert slow.throttled("454") == pytest.approx(2 * Slowdown.FIRST_BACKOFF)
    assert (slow.rate, slow.allowed()) == (10.0, 1)
    for _ in range(Slowdown.CLIMB_AFTER):
        slow.clean()
    assert slow.rate == 12.5 and slow.allowed() == 2
    for _ in range(Slowdown.CLIMB_AFTER):
        slow.clean()
    assert slow.rate is None and slow.allowed() == 4  # clean again: no cap of ours
