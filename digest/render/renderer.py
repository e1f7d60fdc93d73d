"""Render a digest: Jinja templates, CSS inlined once per segment, then per-subscriber placeholders.

selection ─► render ─► message: one render and premailer run per segment, a cheap `personalise`
(the sending path's join-of-bytes copy is fill_in).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import importlib
import importlib.resources
import logging
import pickle
import re
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

import jinja2
import jinja2.bccache
from markupsafe import Markup

from digest.errors import ConfigError
from digest.i18n import format_date, text_direction, translations
from digest.render.excerpts import EXCERPT_MAX_CHARS, EXCERPT_MIN_CHARS, ExcerptFormatter, one_line
from digest.settings import DEFAULT_SUBJECT

if TYPE_CHECKING:
    from premailer import Premailer

    from digest.settings import DigestSettings, Settings
    from digest.sources.post import Post

# Per-subscriber parts of a rendered segment. They contain no character that Jinja escapes,
# lxml re-encodes or premailer rewrites, so they come out of the pipeline exactly as written.
NAME_PLACEHOLDER = "@@DIGEST_NAME@@"
GREETING_PLACEHOLDER = "@@DIGEST_GREETING@@"  # "Hi Bob," / "Hi there," in the site's language
GREETING_NAME_PLACEHOLDER = "@@DIGEST_GREETING_NAME@@"
EMAIL_PLACEHOLDER = "@@DIGEST_EMAIL@@"
UNSUBSCRIBE_URL_PLACEHOLDER = "@@DIGEST_UNSUBSCRIBE_URL@@"
PREFERENCES_URL_PLACEHOLDER = "@@DIGEST_PREFERENCES_URL@@"  # "Manage your subscription"
CATEGORIES_PLACEHOLDER = "@@DIGEST_CATEGORIES@@"  # "all posts" / "posts in News, Movies"
PLACEHOLDERS = (
    NAME_PLACEHOLDER,
    GREETING_PLACEHOLDER,
    GREETING_NAME_PLACEHOLDER,
    EMAIL_PLACEHOLDER,
    UNSUBSCRIBE_URL_PLACEHOLDER,
    PREFERENCES_URL_PLACEHOLDER,
    CATEGORIES_PLACEHOLDER,
)
# Gmail hides the rest of an HTML part beyond about this many bytes (the unsubscribe link too).
GMAIL_CLIP_BYTES = 102_400
# A segment's HTML aims below this, leaving room for the personalised name, email and link.
HTML_BUDGET_BYTES = GMAIL_CLIP_BYTES - 6_000
# Posts bigger than this on average (inlined HTML) have long excerpts worth shortening first;
# smaller ones are many, and the clip guard shows fewer of them in full instead.
LONG_POST_BYTES = 3_000
# What one post listed as a title costs, about (a first guess for the clip guard).
_LISTED_POST_BYTES = 320


class Addressee(TypedDict, total=False):
    """Who a segment is personalised for (Renderer.personalise and personal_values)."""

    name: Required[str]
    email: Required[str]
    unsubscribe_url: Required[str]
    categories: Sequence[str]  # their own, for "why you get this" (default: the segment's)
    preferences_url: str | None  # default: a sample address (previews, test sends)


# The template names (endings) whose output is HTML-escaped.
AUTOESCAPED = ("html", "htm", "xml", "html.j2", "htm.j2")
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
_PREHEADER_MAX = 110

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedSegment:
    """One segment's email: html inlined by premailer once; per-recipient parts are placeholders."""

    subject: str
    html: str
    text: str
    preheader: str
    # What the digest covers ("all posts", "posts in News"): a subscriber without categories
    # of their own gets this in "why you get this".
    categories_text: str = "all posts"
    # The clip guard: when the posts in full would pass HTML_BUDGET_BYTES, only `full` of them
    # are shown in full, `listed` more as titles with links and `unlisted` as "and N more".
    shortened: Shortened | None = None


@dataclass(frozen=True)
class Shortened:
    """What the clip guard did to keep the HTML part under Gmail's clip (and the footer in)."""

    full: int  # posts shown in full (image, excerpt)
    listed: int  # posts shown as a title with a link
    unlisted: int  # posts only counted ("and N more", linking to the archive or the site)
    html_bytes_before: int  # the HTML part with every post in full

    def describe(self) -> str:
        """One line for people: what was shortened and why."""
        parts = [f"{self.full} in full"]
        if self.listed:
            parts.append(f"{self.listed} as titles")
        if self.unlisted:
            parts.append(f"{self.unlisted} as 'and {self.unlisted} more'")
        return (
            f"shortened: {', '.join(parts)} (every post in full was "
            f"{self.html_bytes_before:,} bytes; Gmail clips past {GMAIL_CLIP_BYTES:,})"
        )


@dataclass(frozen=True)
class Recipient:
    """What a template sees as `subscriber`: placeholders, filled later by `personalise`."""

    name: str = NAME_PLACEHOLDER
    greeting: str = GREETING_PLACEHOLDER
    greeting_name: str = GREETING_NAME_PLACEHOLDER
    email: str = EMAIL_PLACEHOLDER
    unsubscribe_url: str = UNSUBSCRIBE_URL_PLACEHOLDER
    preferences_url: str = PREFERENCES_URL_PLACEHOLDER
    categories_text: str = CATEGORIES_PLACEHOLDER


def bundled_templates_dir() -> Path:
    """The templates shipped with digest: inside the wheel, else the repo's templates/ folder."""
    packaged = importlib.resources.files("digest") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


def digest_title(digest: DigestSettings, lang: str) -> str:
    """The digest's `title`, else `weekly` -> `Weekly digest` in the language (a name that
    already says digest is kept)."""
    if digest.title:
        return digest.title
    words = re.sub(r"[-_]+", " ", digest.name or "digest").strip()
    title = words[:1].upper() + words[1:]
    if "digest" in words.lower():
        return title
    return translations(lang).gettext("%(name)s digest") % {"name": title}


def make_preheader(
    posts: Sequence[Post], none_text: str = "No new posts this time.", limit: int = _PREHEADER_MAX
) -> str:
    """The inbox preview line: the posts' titles, shortened to about `limit` characters."""
    if not posts:
        return none_text
    text = one_line(" · ".join(p.title for p in posts))
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ·,;:") + "…"


def _template_line(exc: BaseException, filename: str | None) -> int | None:
    """The line of `filename` where a render error happened (Jinja rewrites tracebacks so)."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if isinstance(line, int) else None


class Renderer:
    """Renders segments for one config; keeps the Jinja environment and counts premailer runs."""

    # Every premailer run in this process, over all renderers (what a send cost, for tests).
    premailer_runs_total = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.premailer_runs = 0
        self.excerpts = ExcerptFormatter(settings.site)
        self.search_path: list[Path] = []
        if settings.templates_dir is not None:
            self.search_path.append(Path(settings.templates_dir))
        self.search_path.append(bundled_templates_dir())
        self.lang = settings.site.lang
        self.translations = translations(self.lang)
        self.env = jinja2.Environment(
            extensions=["jinja2.ext.i18n"],
            loader=jinja2.FileSystemLoader([str(p) for p in self.search_path]),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=AUTOESCAPED, default_for_string=True, default=False
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters.update(self._filters())
        self.env.install_gettext_translations(self.translations, newstyle=True)  # type: ignore[attr-defined]
        self.env.bytecode_cache = _bytecode_cache(compile_fingerprint(self.env))
        # The subject is plain text: no escaping (the message layer encodes headers).
        self.subject_env = jinja2.Environment(
            extensions=["jinja2.ext.i18n"], autoescape=False, undefined=jinja2.StrictUndefined
        )
        self.subject_env.filters.update(self._filters())
        self.subject_env.install_gettext_translations(self.translations, newstyle=True)  # type: ignore[attr-defined]

    def gettext(self, message: str, **values: Any) -> str:
        """`message` in the site's language, with %(name)s values filled in."""
        text = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, count: int, **values: Any) -> str:
        """The singular or plural form for `count` in the site's language; %(num)d is count."""
        return self.translations.ngettext(singular, plural, count) % {"num": count, **values}

    def describe_categories(self, digest: DigestSettings) -> str:
        """`all posts`, or `posts in News, Movies`, for the footer."""
        if not digest.categories:
            return self.gettext("all posts")
        return self.gettext("posts in %(categories)s", categories=", ".join(digest.categories))

    def digest_title(self, digest: DigestSettings) -> str:
        """`weekly` -> `Weekly digest`, in the site's language."""
        return digest_title(digest, self.lang)

    def _filters(self) -> dict[str, Callable[..., Any]]:
        tz = self.settings.site.tz
        lang = self.lang
        return {
            "date": lambda value, fmt=None: format_date(value, lang, tz, fmt),
            "markdown": lambda value: Markup(self.excerpts.to_html(str(value))),
            "plaintext": lambda value, width=72: self.excerpts.to_text(str(value), width),
            "absolute_url": lambda value: self.excerpts.absolute(str(value)) or "",
            "one_line": one_line,
        }

    # -- the per-segment path (slow: Jinja + premailer) --------------------------------------

    def context(
        self,
        digest: DigestSettings,
        posts: Sequence[Post],
        *,
        as_of: datetime,
        view_url: str | None = None,
        archived: bool = False,
        since: datetime | None = None,
        latest: bool = False,
    ) -> dict[str, Any]:
        """What templates (and the subject) see.

        `since`: when the previous edition went out (default: the start of the lookback);
        `latest`: nothing was new, these are the latest posts (previews, test sends).
        """
        site = self.settings.site
        title = self.digest_title(digest)
        return {
            "site": site,
            "lang": self.lang,
            "dir": text_direction(self.lang),
            # digest.title is the name readers see, the default one filled in.
            "digest": digest.model_copy(update={"title": title}),
            "digest_title": title,
            "categories_text": self.describe_categories(digest),
            "posts": list(posts),
            "total_posts": len(posts),
            # The clip guard's: posts shown as titles, and how many more only counted (where).
            "more_posts": [],
            "more_count": 0,
            "more_url": None,
            "as_of": as_of,
            "since": since if since is not None else as_of - digest.lookback,
            "latest": latest,
            "subscriber": Recipient(),
            "view_url": view_url,
            "archived": archived,
        }

    def render_subject(self, digest: DigestSettings, context: dict[str, Any]) -> str:
        """The digest's `subject` template rendered on one line."""
        where = f"{self.settings.source}: digests.{digest.name}.subject"
        if digest.subject == DEFAULT_SUBJECT and context.get("latest"):
            return self.gettext("%(title)s: the latest posts", title=self.settings.site.title)
        if digest.subject == DEFAULT_SUBJECT:  # the default speaks the site's language
            count = len(context["posts"])
            return self.ngettext(
                "%(title)s: %(num)d new post",
                "%(title)s: %(num)d new posts",
                count,
                title=self.settings.site.title,
            )
        try:
            subject = one_line(self.subject_env.from_string(digest.subject).render(context))
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{where}: {exc.message or exc}") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"{where}: {type(exc).__name__}: {exc}") from exc
        return subject or f"{self.settings.site.title}: {len(context['posts'])} new posts"

    def render_template(self, name: str, context: dict[str, Any]) -> str:
        """Render one template by name; any template problem is a ConfigError naming the file."""
        try:
            template = self.env.get_template(name)
        except jinja2.TemplateNotFound:
            where = ", ".join(str(p) for p in self.search_path)
            raise ConfigError(
                f"template {name} not found (looked in {where})",
                hint="check the digest's `template` key and `templates_dir`",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}"
            ) from exc
        filename = template.filename or name
        try:
            return template.render(context)
        except jinja2.TemplateError as exc:
            line = _template_line(exc, template.filename)
            at = f"{filename}:{line}" if line else filename
            raise ConfigError(f"{at}: template error: {exc.message or exc}") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            line = _template_line(exc, template.filename)
            at = f"{filename}:{line}" if line else filename
            raise ConfigError(f"{at}: template error: {type(exc).__name__}: {exc}") from exc

    def inline_css(self, source: str, *, name: str = "html") -> str:
        """Inline the CSS of the first <style>; <style data-premailer="ignore"> blocks stay."""
        self.premailer_runs += 1
        Renderer.premailer_runs_total += 1
        premailer, lxml_error = _premailer()
        try:
            inliner = premailer(
                source,
                base_url=None,  # links are absolute already; placeholders must stay untouched
                allow_network=False,
                allow_loading_external_files=False,
                keep_style_tags=False,
                remove_classes=False,  # media queries select by class
                strip_important=False,
                disable_validation=True,
                disable_basic_attributes=["width", "height"],  # the template sets those itself
                cssutils_logging_level=logging.CRITICAL,
                exclude_pseudoclasses=True,
            )
            return str(inliner.transform(pretty_print=False))
        except (lxml_error, ValueError) as exc:
            raise ConfigError(f"{name}: the rendered HTML cannot be inlined: {exc}") from exc

    def render_segment(
        self,
        digest: DigestSettings,
        posts: Sequence[Post],
        *,
        as_of: datetime,
        view_url: str | None = None,
        archived: bool = False,
        since: datetime | None = None,
        latest: bool = False,
    ) -> RenderedSegment:
        """Render one segment (the posts a group of subscribers gets): subject, html, text.

        `view_url`: the run's archive page ("View in browser"); `archived`: the public copy
        for that page, with nothing personal and no unsubscribe link; `since`: when the
        previous edition went out; `latest`: these are the latest posts, nothing was new.
        """
        context = self.context(
            digest,
            posts,
            as_of=as_of,
            view_url=view_url,
            archived=archived,
            since=since,
            latest=latest,
        )
        subject = self.render_subject(digest, context)
        preheader = make_preheader(context["posts"], self.gettext("No new posts this time."))
        context.update(subject=subject, preheader=preheader)
        html_name = f"{digest.template}.html.j2"
        self.excerpts.limit = EXCERPT_MAX_CHARS
        try:
            while True:
                source = self.render_template(html_name, context)
                text = self.render_template(f"{digest.template}.txt.j2", context)
                inlined = self.inline_css(source, name=html_name)
                size = len(inlined.encode("utf-8"))
                if size <= HTML_BUDGET_BYTES or self.excerpts.limit <= EXCERPT_MIN_CHARS:
                    break
                if self.excerpts.limit == EXCERPT_MAX_CHARS and size < LONG_POST_BYTES * len(posts):
                    break  # many short posts: shorter excerpts barely help; the clip guard does
                # Long excerpts would make Gmail clip the footer (and its unsubscribe link).
                # Shorten every excerpt and render again.
                shorter = int(self.excerpts.limit * HTML_BUDGET_BYTES / size * 0.85)
                self.excerpts.limit = max(EXCERPT_MIN_CHARS, shorter)
                log.info("digest HTML is %d bytes; excerpts cut to %d chars", size, shorter)
            shortened = None
            if size > HTML_BUDGET_BYTES and posts and not archived:
                inlined, shortened = self._clip_guard(digest, posts, context, html_name, size)
        finally:
            self.excerpts.limit = EXCERPT_MAX_CHARS
        return RenderedSegment(
            subject=subject,
            html=inlined,
            text=text,
            preheader=preheader,
            categories_text=context["categories_text"],
            shortened=shortened,
        )

    def _clip_guard(
        self,
        digest: DigestSettings,
        posts: Sequence[Post],
        context: dict[str, Any],
        html_name: str,
        size: int,
    ) -> tuple[str, Shortened]:
        """Fewer posts in full, the rest as titles with links (or "and N more" pointing at the
        archive when web.archive is on), until the HTML part fits: the footer is never clipped.
        """
        before = size
        archive = self.settings.web.archive
        more_url = context["view_url"] or (
            f"{self.settings.web.base_url}/archive"
            if archive
            else f"{self.settings.site.root_url}/"
        )
        count = len(posts)
        listed = 0 if archive else count  # at most this many titles are listed
        # A first guess from the cost of a post in full and of a title, then the secant
        # through the last two renders: two or three renders, whatever the number of posts.
        per_full = size / count
        guess = (HTML_BUDGET_BYTES - 12_000 - listed * _LISTED_POST_BYTES) / per_full
        points = [(count, size)]
        full = max(0, min(count - 1, int(guess)))
        inlined = ""
        best: tuple[str, Shortened] | None = None
        for _ in range(8):
            rest = list(posts[full:])
            shown = rest[:listed]
            context.update(
                posts=list(posts[:full]),
                more_posts=shown,
                more_count=len(rest) - len(shown),
                more_url=more_url,
            )
            inlined = self.inline_css(self.render_template(html_name, context), name=html_name)
            size = len(inlined.encode("utf-8"))
            points.append((full, size))
            if size <= HTML_BUDGET_BYTES and (best is None or full >= best[1].full):
                best = (inlined, Shortened(full, len(shown), len(rest) - len(shown), before))
            if size <= HTML_BUDGET_BYTES and (size > HTML_BUDGET_BYTES * 0.9 or full + 1 >= count):
                break
            if size > HTML_BUDGET_BYTES and full == 0:
                if listed == 0:
                    break
                listed = int(listed * HTML_BUDGET_BYTES / size * 0.9)  # too many titles
                continue
            (f1, s1), (f2, s2) = points[-2], points[-1]
            slope = (s1 - s2) / (f1 - f2) if f1 != f2 else per_full
            target = f2 + (HTML_BUDGET_BYTES * 0.97 - s2) / max(slope, 1.0)
            following = max(0, min(count - 1, int(target)))
            if following == full:
                following = full - 1 if size > HTML_BUDGET_BYTES else full
            if following == full:
                break
            full = following
        if best is None:  # only with a template past any size: the smallest it can be
            log.warning("digest HTML is %d bytes even with every post as a title", size)
            best = (inlined, Shortened(full, len(shown), len(rest) - len(shown), before))
        inlined, shortened = best
        log.info("digest HTML was %d bytes; %s", before, shortened.describe())
        context.update(posts=list(posts), more_posts=[], more_count=0, more_url=None)
        return inlined, shortened

    # -- the per-subscriber path (cheap: placeholder substitution only) -------------------------

    def personal_values(
        self, segment: RenderedSegment, **who: Unpack[Addressee]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(as given, HTML-escaped): each placeholder's value for one subscriber.

        Without preferences_url (previews, test sends) the link goes to a sample address.
        """
        name, categories = who["name"], who.get("categories", ())
        preferences = who.get("preferences_url") or (
            f"{self.settings.web.base_url}/preferences/preview"
        )
        raw = {
            NAME_PLACEHOLDER: name,
            GREETING_PLACEHOLDER: (
                self.gettext("Hi %(name)s,", name=name) if name else self.gettext("Hi there,")
            ),
            GREETING_NAME_PLACEHOLDER: name or self.gettext("there"),
            EMAIL_PLACEHOLDER: who["email"],
            UNSUBSCRIBE_URL_PLACEHOLDER: who["unsubscribe_url"],
            PREFERENCES_URL_PLACEHOLDER: preferences,
            CATEGORIES_PLACEHOLDER: (
                self.gettext("posts in %(categories)s", categories=", ".join(categories))
                if categories
                else segment.categories_text
            ),
        }
        return raw, {k: html.escape(v, quote=True) for k, v in raw.items()}

    def personalise(self, segment: RenderedSegment, **who: Unpack[Addressee]) -> tuple[str, str]:
        """(html, text) with placeholders filled: HTML-escaped in html, as given in text."""
        raw, escaped = self.personal_values(segment, **who)
        # One pass, so a value that happens to contain a placeholder is never expanded again.
        html_part = _PLACEHOLDER_RE.sub(lambda m: escaped[m.group(0)], segment.html)
        text_part = _PLACEHOLDER_RE.sub(lambda m: raw[m.group(0)], segment.text)
        return html_part, text_part


def render_segment(
    settings: Settings, digest: DigestSettings, posts: Sequence[Post], *, as_of: datetime
) -> RenderedSegment:
    """One-off convenience: a fresh Renderer rendering one segment."""
    return Renderer(settings).render_segment(digest, posts, as_of=as_of)


def render_archive_copy(
    renderer: Renderer,
    digest: DigestSettings,
    posts: Sequence[Post],
    *,
    as_of: datetime,
    since: datetime | None = None,
) -> tuple[str, str]:
    """(subject, html) of a run's public archive copy: every post, nothing personal."""
    segment = renderer.render_segment(digest, posts, as_of=as_of, archived=True, since=since)
    html, _text = renderer.personalise(segment, name="", email="", unsubscribe_url="")
    return segment.subject, html


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates kept between processes (a send compiles four, ~40 ms), in
    Jinja's own per-user directory (mode 0700, owner checked). A template is compiled again when
    its file's text changes; a cache that cannot be read or written, or a damaged cache file,
    only costs the compile."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError, TypeError, pickle.UnpicklingError):
            # Jinja reads a file's header with pickle, its code with marshal: a cut or damaged
            # file raises one of these.
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def compile_fingerprint(env: jinja2.Environment) -> str:
    """What a compiled template depends on besides its text: Jinja's version, the environment's
    syntax and whitespace options, extensions, autoescaping, gettext style, and the filters and
    tests it may name (read off the environment, so no change to it can be forgotten here)."""
    parts = (
        jinja2.__version__,
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.keep_trailing_newline,
        env.newline_sequence,
        env.optimized,
        env.undefined.__name__,
        getattr(env, "newstyle_gettext", None),
        sorted(env.extensions),
        AUTOESCAPED,
        sorted(env.filters),
        sorted(env.tests),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


@functools.cache
def _bytecode_cache(fingerprint: str) -> jinja2.BytecodeCache | None:
    """The shared cache of compiled templates for environments with this fingerprint (Jinja's
    own key is the template's name and file only), or None where no safe directory can be had.
    Jinja itself checks its bytecode format and Python's version."""
    try:
        return _TemplateCache(pattern=f"digest-{fingerprint}-%s.cache")
    except (OSError, RuntimeError):
        return None


@functools.cache
def _premailer() -> tuple[type[Premailer], type[Exception]]:
    """premailer and lxml's error class, imported on the first inlining, with two start-up costs
    taken off that change nothing premailer writes (the golden files in tests/render agree):

    - requests: premailer imports it at the top for external stylesheets, which digest never
      lets it fetch (allow_network=False); a stand-in module takes its place and imports the
      real one when something reads an attribute of it (~40-100 ms saved).
    - cssutils' validation: `disable_validation` does not reach style attributes (premailer's
      csstext_to_pairs validates them always), and the first validation compiles cssutils'
      property grammars (~70 ms). Validation only logs (premailer silences cssutils) and never
      changes the CSS written, so the profiles are emptied and nothing is validated.
    """
    if "requests" not in sys.modules:
        sys.modules["requests"] = _OnDemand("requests")
    import cssutils
    from lxml import etree  # type: ignore[import-untyped]
    from premailer import Premailer

    cssutils.profile.removeProfile(all=True)
    return Premailer, etree.LxmlError


class _OnDemand(types.ModuleType):
    """A module that imports the real one of its name on the first attribute read from it.
    (importlib.util.LazyLoader does not serve here: `import name` reads the lazy module's
    `__spec__`, and that loads it.)"""

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)
