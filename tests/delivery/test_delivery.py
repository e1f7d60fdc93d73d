"""delivery.send_digest / plan_digest / send_test against a real SMTP server and real databases."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.delivery.run import plan_digest, send_digest, send_test
from digest.delivery.sending import NOTHING_NEW, TOO_FEW_POSTS
from digest.errors import ConfigError, InvalidAddressError, SmtpConnectError
from digest.store.models import Delivery, Subscriber
from digest.store.runs import history
from digest.store.subscribers import unsubscribe
from tests.conftest import SmtpServer, free_port, sqlite_only
from tests.helpers.site_fixtures import AS_OF, Site, add_subscribers, make_site
from tests.helpers.store_rows import table_counts


@pytest.fixture
def site(tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer) -> Site:
    return make_site(tmp_path / "site", migrated_database_url, smtp_server.port)


def subjects(server: SmtpServer, address: str) -> list[str]:
    return [str(m.message["Subject"]) for m in server.handler.to(address)]


def body_text(server: SmtpServer, address: str) -> str:
    (msg,) = server.handler.to(address)
    part = msg.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_each_subscriber_gets_their_share_and_a_rerun_sends_nothing(
    site: Site, smtp_server: SmtpServer
) -> None:
    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    store = site.store()
    add_subscribers(
        store,
        [
            ("all@example.com", []),
            ("eng@example.com", ["engineering"]),  # case-insensitive
            ("culture@example.com", ["Culture"]),
            ("sport@example.com", ["Sport"]),  # empty share: no email
        ],
    )
    add_subscribers(store, [("gone@example.com", [])], status="unsubscribed")
    add_subscribers(store, [("bounced@example.com", [])], status="bounced")
    settings = site.settings()

    (report,) = send_digest(settings, store, "weekly", as_of=AS_OF)

    assert (report.posts, report.sent, report.failed, report.pending) == (2, 3, 0, 0)
    assert report.status == "finished"
    assert len(smtp_server.handler.messages) == 3
    assert "Rust Tips" in body_text(smtp_server, "all@example.com")
    assert "Book Fair" in body_text(smtp_server, "all@example.com")
    eng = body_text(smtp_server, "eng@example.com")
    assert "Rust Tips" in eng and "Book Fair" not in eng
    culture = body_text(smtp_server, "culture@example.com")
    assert "Book Fair" in culture and "Rust Tips" not in culture
    for nobody in ("sport@example.com", "gone@example.com", "bounced@example.com"):
        assert smtp_server.handler.to(nobody) == []

    again = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert [r.status for r in again] == [NOTHING_NEW]
    assert len(smtp_server.handler.messages) == 3

    # A new post goes out alone next time.
    site.add_post("Later News", categories=["Engineering"], days_ago=0.5)
    (later,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert (later.posts, later.sent) == (1, 2)
    newest = smtp_server.handler.to("eng@example.com")[-1].message.get_body(("plain",))
    assert newest is not None
    text = str(newest.get_content())
    assert "Later News" in text and "Rust Tips" not in text
    with store.session() as session:
        runs = history(session, "weekly")
    assert [(r.posts, r.sent, r.status) for r in runs] == [(1, 2, "finished"), (2, 3, "finished")]
    store.dispose()


def test_fewer_than_min_posts_sends_nothing_and_posts_stay_new(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(
        tmp_path / "site",
        migrated_database_url,
        smtp_server.port,
        digests={"weekly": {"min_posts": 2}},
    )
    site.add_post("Only One")
    store = site.store()
    add_subscribers(store, [("a@example.com", [])])
    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert report.status == TOO_FEW_POSTS and report.run_id == 0
    assert smtp_server.handler.messages == []
    site.add_post("Second One", days_ago=0.5)
    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (report.posts, report.sent) == (2, 1)
    store.dispose()


def test_refused_recipient_is_bounced_and_others_delivered(
    site: Site, smtp_server: SmtpServer
) -> None:
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [(f"u{i}@example.com", []) for i in range(5)])
    smtp_server.handler.permanent["u2@example.com"] = "550 5.1.1 No such user"

    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)

    assert (report.sent, report.failed, report.pending, report.status) == (4, 1, 0, "finished")
    with store.session() as session:
        status, reason = session.execute(
            select(Subscriber.status, Subscriber.status_reason).where(
                Subscriber.email == "u2@example.com"
            )
        ).one()
    assert status == "bounced"
    assert "550" in (reason or "")
    store.dispose()


def test_greylisted_twice_then_accepted_is_delivered_once(
    site: Site, smtp_server: SmtpServer
) -> None:
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("grey@example.com", []), ("ok@example.com", [])])
    smtp_server.handler.transient["grey@example.com"] = 2

    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)

    assert (report.sent, report.pending, report.status) == (2, 0, "finished")
    assert len(smtp_server.handler.to("grey@example.com")) == 1
    with store.session() as session:
        attempts = session.execute(
            select(Delivery.attempts)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == "grey@example.com")
        ).scalar_one()
    assert attempts == 3
    store.dispose()


def test_transient_past_max_attempts_stays_pending_for_the_next_send(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port, max_attempts=2)
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("grey@example.com", []), ("ok@example.com", [])])
    smtp_server.handler.transient["grey@example.com"] = 3

    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (report.sent, report.pending, report.status) == (1, 1, "sending")

    again, nothing_new = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert nothing_new.status == NOTHING_NEW
    assert again.resumed and again.run_id == report.run_id
    assert (again.sent, again.pending, again.status) == (2, 0, "finished")
    assert len(smtp_server.handler.to("grey@example.com")) == 1
    assert len(smtp_server.handler.to("ok@example.com")) == 1
    store.dispose()


def test_unsubscribed_between_snapshot_and_send_is_skipped(
    site: Site, smtp_server: SmtpServer
) -> None:
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("a@example.com", []), ("b@example.com", [])])
    smtp_server.handler.transient["a@example.com"] = 99  # keeps the run open
    settings = site.settings().model_copy(
        update={"delivery": site.settings().delivery.model_copy(update={"max_attempts": 1})}
    )
    (first,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert first.pending == 1
    unsubscribe(store, "a@example.com")
    second, _ = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert (second.sent, second.skipped, second.pending, second.status) == (1, 1, 0, "finished")
    assert smtp_server.handler.to("a@example.com") == []
    store.dispose()


def test_server_down_leaves_everything_pending_then_sends_each_once(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    dead_port = free_port()
    site = make_site(tmp_path / "site", migrated_database_url, dead_port)
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [(f"u{i}@example.com", []) for i in range(6)])

    with pytest.raises(SmtpConnectError) as caught:
        send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert f"127.0.0.1:{dead_port}" in str(caught.value)
    with store.session() as session:
        (run,) = history(session)
        attempts = set(session.scalars(select(Delivery.attempts)))
    assert (run.sent, run.pending, run.status) == (0, 6, "sending")
    assert attempts == {0}

    up = make_site(tmp_path / "site", migrated_database_url, smtp_server.port)
    report, _ = send_digest(up.settings(), store, "weekly", as_of=AS_OF)
    assert report.resumed and (report.sent, report.pending) == (6, 0)
    assert report.resent == 0
    for i in range(6):
        assert len(smtp_server.handler.to(f"u{i}@example.com")) == 1
    store.dispose()


@sqlite_only
def test_missing_secret_is_a_config_error_before_anything_is_written(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port, secret="short")
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("a@example.com", [])])
    with store.session() as session:
        before = table_counts(session)
    with pytest.raises(ConfigError, match=r"web\.secret"):
        send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    with store.session() as session:
        assert table_counts(session) == before
    store.dispose()


def test_plan_and_send_test_write_nothing(site: Site, smtp_server: SmtpServer) -> None:
    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    store = site.store()
    add_subscribers(
        store,
        [
            ("all@example.com", []),
            ("eng@example.com", ["Engineering"]),
            ("x@example.com", ["Sport"]),
        ],
    )
    settings = site.settings()
    with store.session() as session:
        before = table_counts(session)

    plan = plan_digest(settings, store, "weekly", as_of=AS_OF)
    assert [p.title for p in plan.posts] == ["Rust Tips", "Book Fair"]
    assert sorted(s.recipients for s in plan.segments) == [1, 1]
    assert plan.empty_shares == 1 and plan.would_send

    result = send_test(settings, store, "weekly", "Me@Example.com", as_of=AS_OF)
    assert result.posts == 2 and not result.latest
    (msg,) = smtp_server.handler.messages
    assert str(msg.message["Subject"]).startswith("[TEST] ")
    assert msg.rcpt_tos == ["Me@example.com"]

    with store.session() as session:
        assert table_counts(session) == before
        assert history(session) == []
    # The posts are still new: a real send uses them.
    (report,) = send_digest(settings, store, "weekly", as_of=AS_OF)
    assert (report.posts, report.sent) == (2, 2)

    # Nothing new now: send-test shows the latest posts instead.
    latest = send_test(settings, store, "weekly", "me@example.com", as_of=AS_OF)
    assert latest.latest and latest.posts == 2
    store.dispose()


@sqlite_only
def test_send_test_rejects_a_bad_address(site: Site) -> None:
    site.add_post("Hello")
    store = site.store()
    with pytest.raises(InvalidAddressError):
        send_test(site.settings(), store, "weekly", "not an address", as_of=AS_OF)
    store.dispose()


def test_two_senders_together_deliver_each_message_once(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port, max_connections=3)
    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    store = site.store()
    people = [(f"u{i}@example.com", [["Engineering"], ["Culture"], []][i % 3]) for i in range(60)]
    add_subscribers(store, people)
    store.dispose()
    settings = site.settings()
    barrier = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        own = site.store()
        barrier.wait()
        try:
            results.append(send_digest(settings, own, "weekly", as_of=AS_OF))
        except BaseException as exc:
            results.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, list) for r in results), results
    for email, _ in people:
        assert len(smtp_server.handler.to(email)) == 1, email
    check = site.store()
    with check.session() as session:
        runs = history(session)
    assert len(runs) == 1 and runs[0].sent == 60 and runs[0].status == "finished"
    check.dispose()


def test_a_deferred_delivery_does_not_hold_back_new_posts(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(tmp_path / "site", migrated_database_url, smtp_server.port, max_attempts=1)
    site.add_post("First")
    store = site.store()
    add_subscribers(store, [("full@example.com", []), ("ok@example.com", [])])
    smtp_server.handler.transient["full@example.com"] = 99  # a mailbox that stays full

    (first,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (first.sent, first.pending, first.status) == (1, 1, "sending")

    later = AS_OF + timedelta(days=1)
    site.add_post("Second", as_of=later, days_ago=0.5)
    resumed, second = send_digest(site.settings(), store, "weekly", as_of=later)
    assert resumed.run_id == first.run_id and resumed.pending == 1
    assert second.run_id != first.run_id and second.posts == 1
    assert (second.sent, second.pending) == (1, 1)
    assert subjects(smtp_server, "ok@example.com") == [
        "Test Blog: 1 new post",
        "Test Blog: 1 new post",
    ]
    second_text = smtp_server.handler.to("ok@example.com")[1].message.get_body(("plain",))
    assert second_text is not None
    assert "Second" in second_text.get_content() and "First" not in second_text.get_content()
    store.dispose()


def test_a_delivery_deferred_past_give_up_after_fails_without_bouncing(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    site = make_site(
        tmp_path / "site",
        migrated_database_url,
        smtp_server.port,
        max_attempts=1,
        extra={"delivery": {"give_up_after": "0s"}},
    )
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("full@example.com", []), ("ok@example.com", [])])
    smtp_server.handler.transient["full@example.com"] = 99

    (first,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert first.pending == 1

    finished, nothing_new = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert (finished.run_id, finished.status) == (first.run_id, "finished")
    assert (finished.sent, finished.failed, finished.pending) == (1, 1, 0)
    assert nothing_new.status == NOTHING_NEW
    with store.session() as session:
        delivery = session.scalars(
            select(Delivery).join(Subscriber).where(Subscriber.email == "full@example.com")
        ).one()
        subscriber = session.scalars(
            select(Subscriber).where(Subscriber.email == "full@example.com")
        ).one()
    assert delivery.status == "failed"
    assert delivery.last_reply is not None
    assert delivery.last_reply.startswith("gave up after retrying: 451")
    assert subscriber.status == "active"  # a deferral is not a bounce
    assert smtp_server.handler.to("full@example.com") == []
    store.dispose()


@sqlite_only
def test_the_footer_says_why_each_subscriber_gets_it(site: Site, smtp_server: SmtpServer) -> None:
    site.add_post("Rust Tips", categories=["Engineering"])
    store = site.store()
    add_subscribers(store, [("all@example.com", []), ("eng@example.com", ["Engineering"])])

    send_digest(site.settings(), store, "weekly", as_of=AS_OF)

    assert "subscribed to Test Blog (all posts) as all@example.com" in body_text(
        smtp_server, "all@example.com"
    )
    assert "subscribed to Test Blog (posts in Engineering) as eng@example.com" in body_text(
        smtp_server, "eng@example.com"
    )
    (html_msg,) = smtp_server.handler.to("eng@example.com")
    html_part = html_msg.message.get_body(("html",))
    assert html_part is not None and "(posts in Engineering)" in html_part.get_content()
    store.dispose()


@sqlite_only
def test_received_messages_carry_every_header_literally(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    from digest.tokens import UnsubscribeLink, read_unsubscribe_token
    from tests.helpers.site_fixtures import SECRET

    site = make_site(
        tmp_path / "site",
        migrated_database_url,
        smtp_server.port,
        extra={"email": {"unsubscribe_mailto": "leave@example.com", "reply_to": "ed@example.com"}},
    )
    site.add_post("Zoë's Ünïcode notes")
    store = site.store()
    add_subscribers(store, [("ada@example.com", [])])
    send_digest(site.settings(), store, "weekly", as_of=AS_OF)

    (got,) = smtp_server.handler.to("ada@example.com")
    raw, msg = got.data, got.message
    assert str(msg["From"]) == "Test Blog <news@example.com>"
    assert str(msg["To"]) == "Ada <ada@example.com>"
    assert str(msg["Reply-To"]) == "ed@example.com"
    assert msg["Date"] is not None and msg["Subject"] == "Test Blog: 1 new post"
    assert str(msg["Message-ID"]).endswith("@example.com>")
    assert str(msg["List-Id"]).endswith("<weekly.example.com>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Literal on the wire: never RFC 2047-encoded or folded inside a URI.
    (line,) = [x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:")]
    https, mailto = line.removeprefix(b"List-Unsubscribe: ").decode("ascii").split(", ")
    assert https.startswith("<https://news.example.com/unsubscribe/") and https.endswith(">")
    assert mailto.startswith("<mailto:leave@example.com")
    token = https.removeprefix("<https://news.example.com/unsubscribe/").removesuffix(">")
    with store.session() as session:
        ada = session.scalars(select(Subscriber).where(Subscriber.email == "ada@example.com")).one()
    # Bound to Ada's current link key: removed or re-subscribed, the link stops working.
    assert read_unsubscribe_token(SECRET, token) == UnsubscribeLink(ada.id, "weekly", ada.link_key)
    assert b"=?" not in line
    assert all(len(x) <= 998 for x in raw.split(b"\r\n"))
    # multipart/alternative: the text part first, then HTML, both UTF-8.
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert "Zoë's Ünïcode notes" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    store.dispose()


def test_a_relay_outage_longer_than_give_up_after_loses_no_delivery(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer
) -> None:
    # give_up_after is for recipients that keep deferring, not for our relay being down.
    dead_port = free_port()
    site = make_site(
        tmp_path / "site",
        migrated_database_url,
        dead_port,
        extra={"delivery": {"give_up_after": "0s"}},
    )
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("a@example.com", []), ("b@example.com", [])])
    for _ in range(2):
        with pytest.raises(SmtpConnectError):
            send_digest(site.settings(), store, "weekly", as_of=AS_OF)

    up = make_site(
        tmp_path / "site",
        migrated_database_url,
        smtp_server.port,
        extra={"delivery": {"give_up_after": "0s"}},
    )
    report, _ = send_digest(up.settings(), store, "weekly", as_of=AS_OF)
    assert (report.sent, report.failed, report.pending) == (2, 0, 0)
    store.dispose()


@sqlite_only
def test_a_send_runs_premailer_once_per_segment_not_per_subscriber(
    site: Site, smtp_server: SmtpServer
) -> None:
    from digest.render.renderer import Renderer

    site.add_post("Rust Tips", categories=["Engineering"])
    site.add_post("Book Fair", categories=["Culture"], days_ago=2)
    store = site.store()
    groups: list[list[str]] = [[], ["Engineering"], ["Culture"]]
    add_subscribers(store, [(f"u{i}@example.com", groups[i % 3]) for i in range(90)])

    before = Renderer.premailer_runs_total
    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    assert report.sent == 90
    assert Renderer.premailer_runs_total - before == 4  # three segments, the archive copy
    store.dispose()


@sqlite_only
def test_a_resuming_send_reads_the_posts_once_and_warns_once(
    tmp_path: Path,
    migrated_database_url: str,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead_port = free_port()
    site = make_site(tmp_path / "site", migrated_database_url, dead_port)
    site.add_post("Hello")
    store = site.store()
    add_subscribers(store, [("a@example.com", [])])
    with pytest.raises(SmtpConnectError):
        send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    (site.root / "_posts" / "2026-11-26-broken.md").write_text(
        "---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8"
    )

    up = make_site(tmp_path / "site", migrated_database_url, smtp_server.port)
    caplog.set_level(logging.WARNING, logger="digest")
    resumed, nothing_new = send_digest(up.settings(), store, "weekly", as_of=AS_OF)
    assert resumed.sent == 1 and nothing_new.status == NOTHING_NEW
    warnings = [r.getMessage() for r in caplog.records if "broken.md" in r.getMessage()]
    assert len(warnings) == 1, warnings
    store.dispose()


@pytest.mark.parametrize("durable", [True, False])
def test_each_sent_delivery_records_its_message_id_reply_and_time(
    tmp_path: Path, migrated_database_url: str, smtp_server: SmtpServer, durable: bool
) -> None:
    site = make_site(
        tmp_path / "site",
        migrated_database_url,
        smtp_server.port,
        extra={"database": {"durable_marks": durable}},
    )
    site.add_post("Rust Tips")
    store = site.store()
    add_subscribers(store, [(f"r{i}@example.com", []) for i in range(5)])
    began = datetime.now(UTC)
    (report,) = send_digest(site.settings(), store, "weekly", as_of=AS_OF)
    ended = datetime.now(UTC)
    assert report.sent == 5
    received = {str(m.message["Message-ID"]) for m in smtp_server.handler.messages}
    with store.session() as session:
        rows = session.scalars(select(Delivery)).all()
    if store.dialect == "postgresql":
        # Not durable: the sending threads' marks commit without waiting for the disk
        # (store.recorder); the connections they give back to the pool wait again, as
        # everything else expects.
        connections = [store.engine.connect() for _ in range(3)]
        settings = [c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in connections]
        for connection in connections:
            connection.close()
        assert settings == ["on"] * 3
    store.dispose()
    assert {row.message_id for row in rows} == received
    for row in rows:
        assert row.status == "sent" and row.attempts == 1 and row.claimed_by is None
        assert row.last_reply.startswith("250")
        assert row.sent_at is not None and row.sent_at.tzinfo is not None
        assert began - timedelta(seconds=1) <= row.sent_at <= ended + timedelta(seconds=1)
        assert row.updated_at == row.sent_at
