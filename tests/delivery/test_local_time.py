"""deliver: local_time: each zone gets the edition at its own 09:00, once, with the same posts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.crontab import parse_crontab
from digest.delivery.run import send_digest
from digest.local_time import LocalTimeTrigger, due_fires
from digest.schedule.scheduler import Scheduler
from digest.store.subscribers import add_subscriber
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import Site, make_site

ZONES = {
    "tokyo@example.com": "Asia/Tokyo",
    "london@example.com": "Europe/London",
    "ny@example.com": "America/New_York",
}
LONG_AGO = datetime(2027, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path, database_url: str, smtp_server: SmtpServer) -> Site:
    site = make_site(
        tmp_path / "site",
        database_url,
        smtp_server.port,
        digests={"weekly": {"deliver": "local_time", "schedule": "0 9 * * mon"}},
        extra={"site": {"timezone": "Europe/London"}},
    )
    store = site.store()
    for email, zone in ZONES.items():
        add_subscriber(store, email, timezone=zone, now=LONG_AGO)
    store.dispose()
    return site


def send(site: Site, when: str) -> str:
    result = CliRunner().invoke(
        cli, ["--config", str(site.config_path), "send", "weekly", "--as-of", when]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def received(smtp: SmtpServer) -> list[tuple[str, list[str]]]:
    """(recipient, post titles) of each message, in arrival order."""
    out = []
    for m in smtp.handler.messages:
        text = m.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        titles = [t for t in ("Alpha", "Bravo", "Charlie") if t in text]
        out.append((m.rcpt_tos[0], titles))
    return out


def test_each_zone_at_its_own_nine_once_with_the_same_posts_across_a_dst_change(
    site: Site, smtp_server: SmtpServer
) -> None:
    site.add_post("Alpha", as_of=at("2027-03-07T00:00"), days_ago=1)
    # Monday 8 March 2027: Tokyo 00:00 UTC, London 09:00 UTC, New York 14:00 UTC (EST).
    send(site, "2027-03-07T23:59:00+00:00")
    assert received(smtp_server) == []
    send(site, "2027-03-08T09:00:00+09:00")  # Tokyo's 09:00: only Tokyo
    assert received(smtp_server) == [("tokyo@example.com", ["Alpha"])]
    # A post published after the edition began goes to the next edition, in every zone.
    site.add_post("Bravo", as_of=at("2027-03-08T05:00"), days_ago=0)
    send(site, "2027-03-08T08:59:00+00:00")  # London not yet
    send(site, "2027-03-08T09:00:00+00:00")  # London's 09:00 (GMT)
    send(site, "2027-03-08T09:30:00+00:00")  # again: nobody twice
    assert received(smtp_server)[1:] == [("london@example.com", ["Alpha"])]
    send(site, "2027-03-08T08:59:00-05:00")
    send(site, "2027-03-08T09:00:00-05:00")  # New York's 09:00 (EST)
    assert received(smtp_server)[2:] == [("ny@example.com", ["Alpha"])]

    # Monday 15 March: New York is on EDT since the 14th, London still on GMT.
    send(site, "2027-03-15T00:00:00+00:00")  # Tokyo
    send(site, "2027-03-15T09:00:00+00:00")  # London
    send(site, "2027-03-15T12:59:00+00:00")  # 08:59 EDT: New York not yet
    assert [r for r, _ in received(smtp_server)[3:]] == ["tokyo@example.com", "london@example.com"]
    send(site, "2027-03-15T13:00:00+00:00")  # 09:00 EDT, an hour earlier in UTC than last week
    second = received(smtp_server)[3:]
    assert second == [
        ("tokyo@example.com", ["Bravo"]),
        ("london@example.com", ["Bravo"]),
        ("ny@example.com", ["Bravo"]),
    ]

    history = CliRunner().invoke(
        cli,
        ["--config", str(site.config_path), "history", "weekly", "--format", "json"],
    )
    runs = json.loads(history.stdout)
    assert [(r["edition"], r["sent"], r["posts"], r["status"]) for r in runs] == [
        ("2027-03-15T09:00", 3, 1, "finished"),
        ("2027-03-08T09:00", 3, 1, "finished"),
    ]


def test_someone_who_joins_before_their_zone_time_gets_that_edition(
    site: Site, smtp_server: SmtpServer
) -> None:
    site.add_post("Alpha", as_of=at("2027-03-07T00:00"), days_ago=1)
    send(site, "2027-03-08T00:00:00+00:00")  # Tokyo opens the edition
    store = site.store()
    add_subscriber(
        store, "late@example.com", timezone="America/New_York", now=at("2027-03-08T10:00")
    )
    add_subscriber(store, "later@example.com", timezone="Asia/Tokyo", now=at("2027-03-08T10:00"))
    store.dispose()
    # New York's 09:00 by hand: every zone whose time has come (London too); the New Yorker
    # who joined at 10:00 UTC gets it, the Tokyo one who joined after Tokyo's 09:00 does not.
    send(site, "2027-03-08T14:00:00+00:00")
    got = sorted(r for r, _ in received(smtp_server))
    assert got == ["late@example.com", "london@example.com", "ny@example.com", "tokyo@example.com"]


def test_the_trigger_fires_as_each_zone_comes_due() -> None:
    tab = parse_crontab("0 9 * * mon")
    trigger = LocalTimeTrigger(tab, lambda: set(ZONES.values()), UTC)
    fires = []
    previous = None
    now = at("2027-03-07T12:00")
    for _ in range(6):
        previous = trigger.get_next_fire_time(previous, now)
        assert previous is not None
        fires.append(previous.astimezone(UTC).isoformat(timespec="minutes"))
    assert fires == [
        "2027-03-08T00:00+00:00",  # Tokyo
        "2027-03-08T09:00+00:00",  # London (GMT)
        "2027-03-08T14:00+00:00",  # New York (EST)
        "2027-03-15T00:00+00:00",
        "2027-03-15T09:00+00:00",
        "2027-03-15T13:00+00:00",  # New York (EDT): still 09:00 there
    ]
    # At New York's fire every zone is in the same edition; at Tokyo's next one, only Tokyo.
    due = due_fires(tab, ZONES.values(), at("2027-03-08T14:00"))
    assert {f.edition for f in due} == {"2027-03-08T09:00"}
    due = due_fires(tab, ZONES.values(), at("2027-03-15T00:00"))
    assert [(f.zone, f.edition) for f in due][-1] == ("Asia/Tokyo", "2027-03-15T09:00")


def test_a_scheduled_fire_keeps_misfire_grace_per_zone(site: Site, smtp_server: SmtpServer) -> None:
    text = site.config_path.read_text().replace(
        "deliver: local_time", "deliver: local_time\n    misfire_grace: 2h"
    )
    site.config_path.write_text(text)
    site.add_post("Alpha", as_of=at("2027-03-07T00:00"), days_ago=1)
    settings, store = site.settings(), site.store()
    # The scheduler was down from before Tokyo's 09:00 until New York's: only New York is
    # within its grace; a manual send later still reaches the others.
    send_digest(settings, store, "weekly", as_of=at("2027-03-08T14:00"), trigger="schedule")
    assert [r for r, _ in received(smtp_server)] == ["ny@example.com"]
    send_digest(settings, store, "weekly", as_of=at("2027-03-08T14:05"))
    got = sorted(r for r, _ in received(smtp_server))
    assert got == ["london@example.com", "ny@example.com", "tokyo@example.com"]


def test_the_scheduler_uses_the_subscribers_zones(site: Site) -> None:
    settings, store = site.settings(), site.store()
    scheduler = Scheduler(settings, store)
    trigger = scheduler.triggers["weekly"]
    first = trigger.get_next_fire_time(None, at("2027-03-08T00:30"))
    assert first is not None and first.astimezone(UTC) == at("2027-03-08T09:00")  # London next


def test_schedule_dry_run_names_the_first_zone_to_come_due(site: Site) -> None:
    text = site.config_path.read_text().replace("0 9 * * mon", "0 9 * * *")
    site.config_path.write_text(text)
    result = CliRunner().invoke(cli, ["--config", str(site.config_path), "schedule", "--dry-run"])
    assert result.exit_code == 0, result.output
    name, when, rest = result.stdout.split(maxsplit=2)
    assert name == "weekly"
    assert rest.strip() == (
        "(0 9 * * *, local time in America/New_York, Asia/Tokyo, Europe/London)"
    )
    fire = datetime.fromisoformat(when).astimezone(UTC)
    # The next 09:00 of one of the three zones: 00:00 (Tokyo), 09:00 (London) or 13:00/14:00 UTC.
    assert (fire.hour, fire.minute) in {(0, 0), (9, 0), (8, 0), (13, 0), (14, 0)}


def test_a_zone_is_split_by_categories_and_pauses_as_an_at_once_run_is(
    tmp_path: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    """The edition's zone and an at_once digest at the same time: each subscriber gets the
    same posts (the same segment) either way, and the same people get nothing."""
    from datetime import timedelta

    from sqlalchemy import select

    from digest.store.models import Delivery, Run, Segment, Subscriber
    from digest.store.preferences import pause_subscriber
    from tests.helpers.site_fixtures import AS_OF

    every = {"categories": [], "lookback_days": 7, "min_posts": 1, "max_posts": 20}
    site = make_site(
        tmp_path / "site",
        database_url,
        smtp_server.port,
        digests={
            "zoned": {**every, "deliver": "local_time", "schedule": "0 9 * * fri"},
            "plain": {**every, "schedule": "0 9 * * fri"},
        },
        extra={"site": {"timezone": "Europe/London"}},
    )
    site.add_post("Alpha", days_ago=6, categories=["Engineering"])
    site.add_post("Bravo", days_ago=4, categories=["Culture"])
    site.add_post("Charlie", days_ago=2)
    site.add_post("Delta", days_ago=1, categories=["Engineering", "Culture"])
    joined = AS_OF - timedelta(days=30)
    choices = {
        "all@example.com": [],
        "eng@example.com": ["Engineering"],
        "cul@example.com": ["Culture"],
        "both@example.com": ["Engineering", "Culture"],
        "sport@example.com": ["Sport"],
        "back@example.com": [],
        "back-eng@example.com": ["Engineering"],
        "away@example.com": [],
        "ny@example.com": [],  # another zone: not due at London's nine
    }
    store = site.store()
    for email, categories in choices.items():
        zone = "America/New_York" if email.startswith("ny") else None
        row, _ = add_subscriber(store, email, categories=categories, now=joined, timezone=zone)
        if email.startswith("back"):  # back from a pause: nothing dated before its end
            pause_subscriber(store, row.id, AS_OF - timedelta(days=3), now=joined)
        if email.startswith("away"):  # still paused
            pause_subscriber(store, row.id, AS_OF + timedelta(days=3), now=joined)
    settings = site.settings()
    for name in ("zoned", "plain"):
        send_digest(settings, store, name, as_of=AS_OF)

    def shares(name: str) -> dict[str, list[str]]:
        with store.session() as session:
            rows = session.execute(
                select(Subscriber.email, Segment.post_ids)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .join(Segment, Segment.id == Delivery.segment_id)
                .join(Run, Run.id == Delivery.run_id)
                .where(Run.digest == name)
            ).all()
        return {email: sorted(p.rsplit("-", 1)[-1] for p in posts) for email, posts in rows}

    zoned, plain = shares("zoned"), shares("plain")
    store.dispose()
    plain.pop("ny@example.com")
    assert zoned == plain
    assert zoned == {
        "all@example.com": ["alpha.md", "bravo.md", "charlie.md", "delta.md"],
        "eng@example.com": ["alpha.md", "delta.md"],
        "cul@example.com": ["bravo.md", "delta.md"],
        "both@example.com": ["alpha.md", "bravo.md", "delta.md"],
        "back@example.com": ["charlie.md", "delta.md"],
        "back-eng@example.com": ["delta.md"],
    }
