"""Read the YAML config, expand ${VAR}, validate it into typed, frozen settings.

config.yaml ─► config ─► posts ─► ...; every error names the file and the key at fault.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from digest.addresses import normalise_email, parse_from_address
from digest.bounce_settings import BouncesSettings, DkimSettings
from digest.crontab import check_crontab
from digest.durations import parse_duration
from digest.envvars import expand_env
from digest.errors import ConfigError, UnknownDigestError
from digest.site_detection import check_site_source, detect_site
from digest.smtp_settings import SmtpSettings
from digest.web_settings import WebSettings

DEFAULT_CONFIG = "config.yaml"
_DIGEST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SiteSettings(_Model):
    title: str
    url: str
    baseurl: str = ""
    posts_dir: Path = Path("_posts")
    root: Path | None = None
    timezone: str = "UTC"
    permalink: str = "date"
    excerpt_separator: str = "\n\n"
    # A bigger post file is skipped with a warning (a post is kilobytes; this guards memory).
    max_post_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    lang: str = "en"

    @field_validator("lang", mode="before")
    @classmethod
    def _lang(cls, value: object) -> str:
        text = str(value or "en").strip().replace("_", "-")  # Jekyll sites write en_US too
        if re.fullmatch(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*", text):
            return text
        raise ValueError(f"{text!r} is not a language tag like en or pt-BR")

    # Where posts come from; load_settings detects it when the config leaves it out.
    source: Literal["jekyll", "hugo", "feed"] = "jekyll"
    sections: tuple[str, ...] = ()
    feed_url: str | None = None

    @field_validator("sections", mode="before")
    @classmethod
    def _sections(cls, value: object) -> object:
        if value is None:
            return ()
        return tuple(value.split()) if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL, like https://blog.example.com")
        return value.rstrip("/")

    @field_validator("baseurl")
    @classmethod
    def _baseurl(cls, value: str | None) -> str:
        value = (value or "").strip().strip("/")
        return f"/{value}" if value else ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/London)"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def root_url(self) -> str:
        """`url` + `baseurl`, without a trailing slash."""
        return self.url + self.baseurl


class DatabaseSettings(_Model):
    url: str = "sqlite:///digest.db"
    # PostgreSQL: whether each window of sent marks waits for the server's disk (store.recorder).
    durable_marks: bool = True


class EmailSettings(_Model):
    from_: str = Field(alias="from")
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    # `from` parsed once, at load: the display name ("" if none) and the normalised address.
    _from_mailbox: tuple[str, str] = PrivateAttr()
    # VERP: MAIL FROM becomes bounces+<code>@example.com, so a bounce names its delivery.
    bounce_address: str | None = None
    dkim: DkimSettings | None = None

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address(cls, value: str | None) -> str | None:
        if not value:
            return None
        address = normalise_email(value)
        if "+" in address.split("@")[0]:
            raise ValueError(f"{address!r}: give the plain address; digest adds +<code> itself")
        return address

    @field_validator("from_", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_from_address(value)  # raises ValueError with the reason
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._from_mailbox = parse_from_address(self.from_)

    @property
    def from_name(self) -> str:
        """The From display name, like "Example Blog" ("" when `from` is a bare address)."""
        return self._from_mailbox[0]

    @property
    def from_address(self) -> str:
        """The From address, normalised, like "news@example.com"."""
        return self._from_mailbox[1]

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if not value:
            return None
        address = value.removeprefix("mailto:")
        normalise_email(address.split("?", 1)[0])
        return f"mailto:{address}"


# delivery.mark_window: its default, and its ceiling (also what a dead sender whose worker row is
# gone is assumed to have used when its possible re-sends are counted).
MARK_WINDOW = 16
MAX_MARK_WINDOW = 64


class DeliverySettings(_Model):
    max_attempts: int = Field(5, ge=1, le=100)
    retry_backoff: float = Field(60.0, ge=0)
    # A delivery still deferred (4xx) this long after its run started is given up as failed.
    give_up_after: timedelta = timedelta(days=3)
    # Sent marks recorded together, one commit per this many messages on a connection: after a
    # crash, at most this many messages per connection may go out twice (counted as possible
    # re-sends); 1 records each message before the next body goes.
    mark_window: int = Field(MARK_WINDOW, ge=1, le=MAX_MARK_WINDOW)

    @field_validator("give_up_after", mode="before")
    @classmethod
    def _give_up(cls, value: object) -> timedelta:
        return parse_duration(value)


# The default subject, "Example Blog: 3 new posts"; render says it in the site's language.
DEFAULT_SUBJECT = "{{ site.title }}: {{ posts|length }} new post{{ 's' if posts|length != 1 }}"


class DigestSettings(_Model):
    name: str = ""
    subject: str = DEFAULT_SUBJECT
    schedule: str = "0 9 * * mon"
    categories: tuple[str, ...] = ()
    max_posts: int = Field(20, ge=1, le=500)
    min_posts: int = Field(1, ge=0)
    lookback_days: float = Field(7, gt=0)
    misfire_grace: timedelta = timedelta(hours=6)
    template: str = "digest"

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(value.split())
        return value

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _grace(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        check_crontab(value)  # ValueError naming the field at fault, or "never fires"
        return value.strip() if value.strip().startswith("@") else value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]+$", value):
            raise ValueError("must be a template name like 'digest' (letters, digits, - and _)")
        return value

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)


class Settings(_Model):
    site: SiteSettings
    templates_dir: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    email: EmailSettings
    web: WebSettings = WebSettings()
    delivery: DeliverySettings = DeliverySettings()
    bounces: BouncesSettings = BouncesSettings()
    digests: dict[str, DigestSettings] = Field(default_factory=dict)
    source: Path = Field(default=Path(DEFAULT_CONFIG), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_source_key(cls, data: object) -> object:
        if isinstance(data, dict) and "source" in data and not isinstance(data["source"], Path):
            raise ValueError("source: unknown key")
        return data

    @field_validator("digests", mode="before")
    @classmethod
    def _name_digests(cls, value: object) -> object:
        if isinstance(value, dict):
            named: dict[str, object] = {}
            for name, body in value.items():
                if not _DIGEST_NAME.match(str(name)):
                    raise ValueError(
                        f"digest name {name!r} must be letters, digits, - and _ (at most 64)"
                    )
                body = {} if body is None else body
                if isinstance(body, dict):
                    body = {**body, "name": str(name)}
                named[str(name)] = body
            return named
        return value

    def digest(self, name: str) -> DigestSettings:
        """The digest called `name`, or an error listing the ones there are."""
        try:
            return self.digests[name]
        except KeyError:
            known = ", ".join(sorted(self.digests)) or "none"
            raise UnknownDigestError(
                f"unknown digest {name!r} in {self.source} (digests: {known})"
            ) from None

    @property
    def config_dir(self) -> Path:
        return self.source.parent


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            hint="pass --config PATH, set DIGEST_CONFIG, or run `digest demo` for an example",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"] if p != "__root__")
    loc = loc.replace("from_", "from")
    kind = error["type"]
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def resolve_config_path(path: str | Path | None, environ: dict[str, str] | None = None) -> Path:
    """--config, else $DIGEST_CONFIG, else ./config.yaml."""
    env = os.environ if environ is None else environ
    return Path(path or env.get("DIGEST_CONFIG") or DEFAULT_CONFIG)


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read, expand and validate the config; relative paths resolve against its folder."""
    source = resolve_config_path(path, environ).absolute()
    raw = _read_yaml(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys (site:, smtp:, ...)")
    try:
        data = expand_env(raw, os.environ if environ is None else environ)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None

    base = source.parent
    site = data.get("site")
    if isinstance(site, dict):
        data["site"] = detect_site(site, base)
    if data.get("templates_dir"):
        data["templates_dir"] = base / Path(str(data["templates_dir"]))
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and smtp.get("ca_file"):
        smtp["ca_file"] = base / Path(str(smtp["ca_file"]))
    _resolve_file(data, ("email", "dkim", "private_key_file"), base)
    _resolve_file(data, ("bounces", "imap", "ca_file"), base)
    database = data.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        database["url"] = _resolve_sqlite(database["url"], base)
    elif database is None:
        data["database"] = {"url": _resolve_sqlite("sqlite:///digest.db", base)}

    try:
        settings = Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc.errors()[0])}") from None

    check_site_source(settings.site, source)
    if settings.templates_dir is not None and not settings.templates_dir.is_dir():
        raise ConfigError(
            f"{source}: templates_dir: folder {settings.templates_dir} does not exist"
        )
    if settings.smtp.ca_file is not None and not settings.smtp.ca_file.is_file():
        raise ConfigError(f"{source}: smtp.ca_file: file {settings.smtp.ca_file} does not exist")
    for key, path in _files_that_must_exist(settings):
        if not path.is_file():
            raise ConfigError(f"{source}: {key}: file {path} does not exist")
    return settings


def _files_that_must_exist(settings: Settings) -> list[tuple[str, Path]]:
    files = []
    if settings.email.dkim is not None:
        files.append(("email.dkim.private_key_file", settings.email.dkim.private_key_file))
    imap = settings.bounces.imap
    if imap is not None and imap.ca_file is not None:
        files.append(("bounces.imap.ca_file", imap.ca_file))
    return files


def _resolve_file(data: dict[str, Any], keys: tuple[str, ...], base: Path) -> None:
    """A file path at data[k1][k2]... made relative to the config folder, when it is there."""
    parent: Any = data
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if isinstance(parent, dict) and parent.get(keys[-1]):
        parent[keys[-1]] = base / Path(str(parent[keys[-1]]))


def _resolve_sqlite(url: str, base: Path) -> str:
    """sqlite:///relative.db resolves against the config folder; other URLs pass through."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return prefix + str((base / rest).resolve())
    return url
