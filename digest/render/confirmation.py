"""The sign-up confirmation email: plain text and HTML, in the site's language.

web (a sign-up) ─► confirmation_email ─► the web mailer; built with EmailMessage, one at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape
from typing import TYPE_CHECKING

from digest.addresses import address_domain
from digest.i18n import text_direction, translations
from digest.tokens import CONFIRM_MAX_AGE

if TYPE_CHECKING:
    from digest.settings import Settings


def confirmation_message(
    settings: Settings,
    *,
    to_email: str,
    to_name: str,
    link: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The 'confirm your subscription' email: plain text first, HTML last."""
    from_name, from_addr = settings.email.from_name, settings.email.from_address
    title = settings.site.title
    tr = translations(settings.site.lang)
    msg = EmailMessage()
    # Address() refuses CR/LF in either part, the last guard against header injection.
    msg["From"] = Address(display_name=from_name, addr_spec=from_addr)
    msg["To"] = Address(display_name=to_name, addr_spec=to_email)
    if settings.email.reply_to:
        msg["Reply-To"] = settings.email.reply_to
    msg["Subject"] = tr.gettext("Confirm your subscription to %(title)s") % {"title": title}
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=address_domain(from_addr))
    msg["Auto-Submitted"] = "auto-generated"
    greeting = tr.gettext("Hello,")
    if to_name:
        greeting = tr.gettext("Hello %(name)s,") % {"name": to_name}
    days = CONFIRM_MAX_AGE // 86400
    asked = tr.gettext("Someone, hopefully you, asked to subscribe %(email)s to %(title)s.")
    works = tr.ngettext(
        "To confirm, open this link (it works for %(num)d day) and press the button:",
        "To confirm, open this link (it works for %(num)d days) and press the button:",
        days,
    ) % {"num": days}
    ignore = tr.gettext("If it was not you, ignore this email: nothing more will be sent.")
    button = tr.gettext("Confirm my subscription")
    lasts = tr.ngettext(
        "The link works for %(num)d day.", "The link works for %(num)d days.", days
    ) % {"num": days}
    msg.set_content(
        f"{greeting}\n\n"
        f"{asked % {'email': to_email, 'title': title}}\n"
        f"{works}\n\n"
        f"{link}\n\n"
        f"{ignore}\n"
    )
    e = escape
    asked_html = e(asked) % {"email": f"<b>{e(to_email)}</b>", "title": e(title)}
    lang, direction = e(settings.site.lang), text_direction(settings.site.lang)
    msg.add_alternative(
        f"""<!doctype html><html lang="{lang}" dir="{direction}">
<body style="font-family:Arial,sans-serif;color:#18181b">
<p>{e(greeting)}</p>
<p>{asked_html}</p>
<p><a href="{e(link)}" style="display:inline-block;padding:10px 18px;background:#2563eb;\
color:#ffffff;text-decoration:none;border-radius:6px">{e(button)}</a></p>
<p style="color:#71717a;font-size:13px">{e(lasts)}
{e(ignore)}</p>
</body></html>
""",
        subtype="html",
    )
    return msg
