"""The sign-up confirmation email in the digest's design: masthead, card, button, inlined CSS,
dark-mode rules kept in the head, and a text part with the link."""

from __future__ import annotations

from pathlib import Path

from digest.config import load_settings
from digest.render.confirmation import confirmation_message

LINK = "https://news.example.com/confirm/abc.def"


def test_the_confirmation_email_looks_like_the_digest(tmp_path: Path) -> None:
    (tmp_path / "_posts").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  title: Example Blog\n  url: https://blog.example.com\n"
        'email:\n  from: "Example Blog <news@example.com>"\n',
        encoding="utf-8",
    )
    msg = confirmation_message(
        load_settings(config), to_email="ada@example.com", to_name="", link=LINK
    )
    assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = str(html_part.get_content()), str(text_part.get_content())
    # The digest's frame: the grey page, the site's name on top, a white card, a blue button.
    assert 'bgcolor="#eef0f3"' in html and "background-color:#eef0f3" in html
    assert '<a class="site" href="https://blog.example.com/"' in html and "Example Blog</a>" in html
    assert "background-color:#fff;" in html and "border-radius:10px" in html
    button = html.split('class="button"', 1)[1].split(">", 1)[0]
    assert f'href="{LINK}"' in button and "background-color:#1d5fd6" in button
    assert "@media (prefers-color-scheme:dark)" in html  # kept in the head, not inlined
    assert "<style>" not in html.split("</head>", 1)[1]
    # The text part says the same, with the link on a line of its own.
    assert f"\n{LINK}\n" in text
    assert "asked to subscribe ada@example.com to Example Blog." in text
