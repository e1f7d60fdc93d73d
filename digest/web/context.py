"""What every handler of `digest serve` may use: settings, store, secret, pages, mailer, words.

web's routes build one WebContext per app; handlers, preferences, archive and webhooks read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.render.renderer import digest_title
from digest.web.clients import Network
from digest.web.mailer import ConfirmationMailer
from digest.web.pages import PageShell
from digest.web.site_categories import SiteCategories

if TYPE_CHECKING:
    from digest.bounces.webhooks import Webhooks
    from digest.settings import Settings
    from digest.store import Store


@dataclass(frozen=True)
class WebContext:
    """What every handler may use: settings, the store, the signing secret, the page shell,
    the confirmation mailer, the trusted proxies and the site's categories."""

    settings: Settings
    store: Store
    secret: str
    shell: PageShell
    mailer: ConfirmationMailer
    trusted_proxies: tuple[Network, ...]
    categories: SiteCategories
    webhooks: Webhooks | None = None  # the relay webhooks, when any relay is configured

    @property
    def site_title(self) -> str:
        """The site's title, as in settings.site.title."""
        return self.shell.site_title

    @property
    def digest_names(self) -> list[str]:
        """The names of the config's digests, in its order."""
        return list(self.settings.digests)

    def digest_title(self, name: str) -> str:
        """A digest's title in the site's language (`Weekly digest`); a digest no longer in
        the config (its link is older than a rename) is called by its name."""
        digest = self.settings.digests.get(name)
        return digest_title(digest, self.settings.site.lang) if digest is not None else name

    def gettext(self, message: str, **values: object) -> str:
        """The message in the site's language, its %(name)s placeholders filled."""
        return self.shell.gettext(message, **values)

    def ngettext(self, singular: str, plural: str, num: int, **values: object) -> str:
        """The singular or plural message for `num`, in the site's language."""
        return self.shell.ngettext(singular, plural, num, **values)
