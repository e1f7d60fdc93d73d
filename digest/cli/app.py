"""The click group, global options and error presentation shared by every command.

cli is a thin door: parse input, make one library call, present the result or the error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from digest.config import Settings, load_settings
from digest.errors import EXIT_FAILED, DigestError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("digest")


class RedactingFilter(logging.Filter):
    """Defence in depth: no secret value reaches a log line, whatever a library logs."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for s in self.secrets:
                    message = message.replace(s, "***")
                record.msg, record.args = message, None
        return True


_filter = RedactingFilter([])


class _PlainFormatter(logging.Formatter):
    """`warning: <message>`: how a command line talks; -v adds times and logger names."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:  # an unexpected error (a bug): keep the traceback for the report
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        if verbose
        else _PlainFormatter()
    )
    handler.addFilter(_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("digest").setLevel(level)
    if verbose >= 2:
        root.setLevel(logging.DEBUG)


@dataclass
class State:
    """What the global options gave; the settings are loaded on first use."""

    config_path: str | None = None
    verbose: int = 0
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            _filter.secrets = [
                s
                for s in (
                    self._settings.smtp.password.get_secret_value(),
                    self._settings.web.secret.get_secret_value(),
                )
                if s and len(s) >= 4
            ]
        return self._settings


pass_state = click.make_pass_decorator(State)


def present_error(exc: DigestError) -> None:
    """One clear line (and an optional hint) on stderr; never a traceback."""
    click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


class DigestGroup(click.Group):
    """A group that turns our expected errors into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            present_error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(EXIT_FAILED)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The YAML config (default: $DIGEST_CONFIG, else ./config.yaml).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug); never secrets.")
@click.version_option(package_name="digest", prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """digest: newsletter digests for Jekyll blogs, sent exactly once.

    Start with `digest demo` in an empty folder.
    """
    setup_logging(verbose)
    ctx.obj = State(config_path=config_path, verbose=verbose)


def parse_as_of(text: str | None, tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """--as-of: ISO 8601; without an offset it is in the site's zone; default now."""
    if not text:
        return now if now is not None else datetime.now(tz).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time like 2025-11-27T09:00 or 2025-11-27T09:00+01:00",
            param_hint="--as-of",
        ) from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def as_of_option(func: F) -> F:
    """The shared --as-of option (a string; parse it with parse_as_of)."""
    return click.option(
        "--as-of",
        "as_of",
        metavar="T",
        help="ISO 8601 time to act as of; without offset it is in site.timezone (default: now).",
    )(func)


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def resolve_out(path: str | None) -> Path | None:
    return Path(path) if path else None
