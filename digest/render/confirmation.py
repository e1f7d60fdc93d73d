"""The sign-up confirmation email: plain text and HTML, in the site's language.

web (a sign-up) ─► confirmation_email ─► the web mailer; built with EmailMessage, one at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from digest.addresses import address_domain
from digest.i18n import text_direction, translations
from digest.render.renderer import Renderer
from digest.tokens import CONFIRM_MAX_AGE

if TYPE_CHECKING:
    from digest.settings import Settings

HTML_TEMPLATE = "confirmation.html.j2"
TEXT_TEMPLATE = "confirmation.txt.j2"


def confirmation_message(
    settings: Settings,
    *,
    to_email: str,
    to_name: str,
    link: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The 'confirm your subscription' email: plain text first, HTML last (in the digest's
    design; `to_name` only in the To header, where the web mailer passes none)."""
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
    # In the digest's design (templates/confirmation.html.j2, CSS inlined), text part first.
    renderer = Renderer(settings)
    context = {
        "site": settings.site,
        "lang": settings.site.lang,
        "dir": text_direction(settings.site.lang),
        "subject": str(msg["Subject"]),
        "email": to_email,
        "name": to_name,
        "link": link,
        "days": CONFIRM_MAX_AGE // 86400,
    }
    msg.set_content(renderer.render_template(TEXT_TEMPLATE, context))
    html = renderer.render_template(HTML_TEMPLATE, context)
    msg.add_alternative(renderer.inline_css(html, name=HTML_TEMPLATE), subtype="html")
    return msg
