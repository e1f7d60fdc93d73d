"""The message: both build paths agree, every header of REFERENCE §3 is there and literal."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest

from digest.errors import BadInputError, InvalidAddressError
from digest.mail.message import MessageTemplate, build_message, serialise_message
from digest.render.renderer import (
    EMAIL_PLACEHOLDER,
    GREETING_NAME_PLACEHOLDER,
    UNSUBSCRIBE_URL_PLACEHOLDER,
    RenderedSegment,
    Renderer,
)
from digest.settings import Settings

UNSUB = "https://news.example.com/unsubscribe/abc.def"
COMPARED = [
    "From",
    "To",
    "Subject",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Precedence",
    "MIME-Version",
]


def make_settings(**email: Any) -> Settings:
    return Settings.model_validate(
        {
            "site": {"title": "Example Blog", "url": "https://blog.example.com"},
            "email": {"from": "Example Blog <news@example.com>", **email},
            "web": {"base_url": "https://news.example.com", "secret": "x" * 32},
            "digests": {"weekly": {}},
        }
    )


def make_segment(
    subject: str = "Example Blog: 2 new posts", body: str = "Hello"
) -> RenderedSegment:
    html = (
        '<!doctype html><html><body><p style="color: #333; font-family: Georgia, serif">'
        f"Hi {GREETING_NAME_PLACEHOLDER}, {body}</p>"
        + "<p>"
        + "A long paragraph of text that goes on. " * 40
        + "</p>"
        f'<p><a href="{UNSUBSCRIBE_URL_PLACEHOLDER}">Unsubscribe</a> ({EMAIL_PLACEHOLDER})</p>'
        "</body></html>"
    )
    text = (
        f"Hi {GREETING_NAME_PLACEHOLDER}, {body}\n\n"
        + "A line with trailing space \n.\nFrom the start\n"
        + "word " * 60
        + f"\n\nUnsubscribe: {UNSUBSCRIBE_URL_PLACEHOLDER}\n"
    )
    return RenderedSegment(subject=subject, html=html, text=text, preheader="")


def both(
    settings: Settings,
    segment: RenderedSegment,
    name: str,
    email: str,
    url: str = UNSUB,
    prefix: str = "",
) -> tuple[bytes, bytes]:
    renderer = Renderer(settings)
    digest = settings.digest("weekly")
    fast = MessageTemplate(settings, digest, segment, renderer, subject_prefix=prefix)
    slow = build_message(
        settings,
        digest,
        segment,
        renderer,
        to_email=email,
        to_name=name,
        unsubscribe_url=url,
        subject_prefix=prefix,
    )
    built = fast.build(to_email=email, to_name=name, unsubscribe_url=url)
    return built.data, serialise_message(slow)


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


CASES = [
    ("Ada Lovelace", "ada@example.org", "Example Blog: 2 new posts", "Hello"),
    ("Zoë Ünïcode", "zoe@example.org", "Ünïcode news – café", "Grüße, naïve café"),
    ("王小明", "wang@example.cn", "本周新闻摘要：两篇新文章", "你好，这是本周的新闻摘要。" * 30),
    ('Doe, "Jane" \\ Q.', "jane@example.org", "Re: [x] a; b <c>", "Hi"),
    ("", "anon@example.org", "No name here", "Hello"),
    ("欧阳" * 20, "ouyang@example.cn", "长" * 70, "Hello"),
    ("Ünïcode " * 20, "long@example.org", "A very long subject " * 8, "Hello"),
]


@pytest.mark.parametrize(("name", "email", "subject", "body"), CASES)
def test_fast_path_parses_like_the_reference(
    name: str, email: str, subject: str, body: str
) -> None:
    settings = make_settings(reply_to="Replies <reply@example.com>")
    fast_bytes, slow_bytes = both(
        settings, make_segment(subject, body), name, email, prefix="[TEST] "
    )
    fast, slow = parse(fast_bytes), parse(slow_bytes)
    for header in COMPARED:
        if header == "To" and len(name) > 15:
            # The stdlib parser keeps the whitespace between two encoded-words of a display
            # name (RFC 2047 says drop it), so long names are compared without whitespace.
            assert "".join(str(fast[header]).split()) == "".join(str(slow[header]).split())
            continue
        assert str(fast[header]) == str(slow[header]), header
    display = fast["To"].addresses[0].display_name
    assert "".join(display.split()) == "".join(name.split())
    if not name.isascii():  # an RFC 2047 decoder reads the encoded-words back exactly
        raw_to = fast_bytes.split(b"\r\nTo: ", 1)[1].split(b"\r\nSubject:", 1)[0].decode()
        assert str(make_header(decode_header(raw_to))) == f"{name.strip()} <{email}>"
    assert fast["To"].addresses[0].addr_spec == email
    assert str(fast["Subject"]) == "[TEST] " + subject
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in fast.iter_parts()] == ["text/plain", "text/html"]
    assert bodies(fast) == bodies(slow)
    text, html = bodies(fast)
    assert text.startswith(f"Hi {name.strip()}," if name else "Hi ")
    assert email in html and UNSUB in text and UNSUB in html
    assert body in text.replace("\r\n", "\n")
    for part in fast.iter_parts():
        assert part.get_content_charset() == "utf-8"
    assert not fast.defects and all(not p.defects for p in fast.iter_parts())


@pytest.mark.parametrize(("name", "email", "subject", "body"), CASES)
def test_lines_are_crlf_and_short(name: str, email: str, subject: str, body: str) -> None:
    data, _ = both(make_settings(), make_segment(subject, body), name, email)
    assert b"\n" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head, _, rest = data.partition(b"\r\n\r\n")
    over = [line for line in rest.split(b"\r\n") if len(line) > 78]
    assert over == []
    for line in head.split(b"\r\n"):
        if not line.startswith(b"List-Unsubscribe:"):
            assert len(line) <= 78, line
    assert data.isascii()


def test_every_reference_header_is_present_and_literal() -> None:
    settings = make_settings(
        reply_to="Replies <reply@example.com>", unsubscribe_mailto="leave@example.com"
    )
    data, _ = both(settings, make_segment(), "Ada", "ada@example.org")
    msg = parse(data)
    assert msg["From"] == "Example Blog <news@example.com>"
    assert msg["To"] == "Ada <ada@example.org>"
    assert msg["Reply-To"] == "Replies <reply@example.com>"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime.utcoffset() is not None
    assert re.fullmatch(r"<[^@<>]+@example\.com>", msg["Message-ID"])
    assert msg["List-Id"] == "Example Blog weekly digest <weekly.example.com>"
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>, <mailto:leave@example.com?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Precedence"] == "bulk"
    assert (
        f"List-Unsubscribe: <{UNSUB}>, <mailto:leave@example.com?subject=unsubscribe>\r\n".encode()
        in data
    )


def test_no_mailto_unless_configured() -> None:
    data, slow = both(make_settings(), make_segment(), "Ada", "ada@example.org")
    assert f"List-Unsubscribe: <{UNSUB}>\r\n".encode() in data
    assert f"List-Unsubscribe: <{UNSUB}>\r\n".encode() in slow
    assert "Reply-To" not in parse(data)


def test_long_unsubscribe_url_is_never_folded_or_encoded() -> None:
    url = "https://news.example.com/unsubscribe/" + "A1b2C3-_" * 33  # > 300 characters
    assert len(url) > 300
    fast, slow = both(make_settings(), make_segment(), "Zoë", "zoe@example.org", url=url)
    for data in (fast, slow):
        assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in data
        assert b"=?utf-8?" not in data.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n", 1)[0]
        assert parse(data)["List-Unsubscribe"] == f"<{url}>"


def test_list_id_phrase_is_quoted_when_it_has_specials() -> None:
    settings = Settings.model_validate(
        {
            "site": {"title": "Blog: the (best)", "url": "https://blog.example.com"},
            "email": {"from": "news@Example.COM"},
            "digests": {"weekly": {}},
        }
    )
    fast, slow = both(settings, make_segment(), "Ada", "ada@example.org")
    assert b'List-Id: "Blog: the (best) weekly digest" <weekly.example.com>\r\n' in fast
    assert parse(fast)["List-Id"] == parse(slow)["List-Id"]
    assert parse(fast)["From"] == "news@example.com"


@pytest.mark.parametrize(
    "name", ["Eve\r\nBcc: victim@example.org", "Eve\nBcc: x@example.org", "Eve\x00"]
)
def test_header_injection_in_name_is_refused(name: str) -> None:
    settings = make_settings()
    template = MessageTemplate(
        settings, settings.digest("weekly"), make_segment(), Renderer(settings)
    )
    with pytest.raises(InvalidAddressError, match="control character"):
        template.build(to_email="eve@example.org", to_name=name, unsubscribe_url=UNSUB)


def test_header_injection_in_address_url_and_subject_is_refused() -> None:
    settings = make_settings()
    digest, renderer = settings.digest("weekly"), Renderer(settings)
    template = MessageTemplate(settings, digest, make_segment(), renderer)
    with pytest.raises(InvalidAddressError):
        template.build(to_email="eve@example.org\r\nBcc: x@y.z", to_name="", unsubscribe_url=UNSUB)
    with pytest.raises(BadInputError, match="unsubscribe URL"):
        template.build(to_email="eve@example.org", to_name="", unsubscribe_url=UNSUB + "\r\nX: y")
    with pytest.raises(BadInputError, match="subject"):
        MessageTemplate(settings, digest, make_segment("Hi\r\nBcc: x@y.z"), renderer)
    with pytest.raises(BadInputError, match="subject"):
        build_message(
            settings,
            digest,
            make_segment("Hi\nBcc: x@y.z"),
            renderer,
            to_email="eve@example.org",
            to_name="",
            unsubscribe_url=UNSUB,
        )


def test_text_is_quoted_printable_for_latin_and_base64_for_cjk_html_base64() -> None:
    latin, _ = both(make_settings(), make_segment(body="Grüße"), "Zoë", "zoe@example.org")
    cjk, _ = both(make_settings(), make_segment(body="你好" * 400), "Wang", "w@example.cn")
    assert latin.count(b"Content-Transfer-Encoding: quoted-printable") == 1
    assert latin.count(b"Content-Transfer-Encoding: base64") == 1
    assert b"Hi Zo=C3=AB, Gr=C3=BC=C3=9Fe" in latin  # the text part stays readable
    assert cjk.count(b"Content-Transfer-Encoding: base64") == 2
    assert "你好" * 400 in bodies(parse(cjk))[0]


def test_each_build_has_its_own_message_id_and_recipient() -> None:
    settings = make_settings()
    template = MessageTemplate(
        settings, settings.digest("weekly"), make_segment(), Renderer(settings)
    )
    one = template.build(to_email="a@example.org", to_name="A", unsubscribe_url=UNSUB + "1")
    two = template.build(to_email="b@example.org", to_name="B", unsubscribe_url=UNSUB + "2")
    assert one.message_id != two.message_id
    assert parse(one.data)["Message-ID"] == one.message_id
    assert parse(two.data)["To"] == "B <b@example.org>"
    assert f"<{UNSUB}2>".encode() in two.data and UNSUB.encode() + b"1" not in two.data


def test_a_really_rendered_digest_matches_the_reference() -> None:
    from datetime import datetime
    from pathlib import Path

    from digest.selection.rules import latest_posts
    from digest.sources.jekyll.reader import load_posts

    root = Path(__file__).resolve().parents[2]
    settings = Settings.model_validate(
        {
            "site": {
                "title": "Example Blog",
                "url": "https://blog.example.com",
                "posts_dir": root / "examples" / "_posts",
            },
            "email": {"from": "Example Blog <news@example.com>"},
            "web": {"base_url": "https://news.example.com", "secret": "x" * 32},
            "digests": {"weekly": {}},
        }
    )
    digest = settings.digest("weekly")
    as_of = datetime.fromisoformat("2026-11-27T12:00:00+00:00")
    posts = latest_posts(load_posts(settings.site).posts, digest, as_of, 20)
    assert posts
    segment = Renderer(settings).render_segment(digest, posts, as_of=as_of)
    fast, slow = both(settings, segment, "Zoë <&> Ünïcode", "zoe@example.org")
    assert bodies(parse(fast)) == bodies(parse(slow))
    text, html = bodies(parse(fast))
    assert UNSUB in html and UNSUB in text  # the visible unsubscribe link, personalised
    assert posts[0].title in text
