"""The click group, global options and error presentation shared by every command.

cli is a thin door: parse input, make one library call, present the result or the error.
Each command's module is imported only when that command runs (or shows its own --help),
so `digest --help` and `digest --version` load click and little else.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

from digest.errors import EXIT_FAILED, DigestError

if TYPE_CHECKING:
    from digest.settings import Settings

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
            # Imported here, not at the top: digest.config brings pydantic and YAML (a third
            # of `digest --version`'s time), and --help/--version never read the settings.
            from digest.config import load_settings

            self._settings = load_settings(self.config_path)
            _filter.secrets = [
                s
                for s in (
                    self._settings.smtp.password.get_secret_value(),
                    self._settings.web.secret.get_secret_value(),
                    *self._settings.bounces.secret_values(),
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


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives ("module:attribute") and the first line of its help.

    The help is written here too so that `digest --help` can list every command without
    importing them; tests/test_cli_startup.py checks it equals the command's own help.
    """

    import_path: str
    short_help: str


class DigestGroup(click.Group):
    """A group that loads each command on first use and presents our expected errors.

    A DigestError becomes one line on stderr and its exit code, never a traceback.
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, LazyCommand] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self.load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load_command(self, name: str) -> click.Command:
        """Import the module that defines command `name` and return the command."""
        module_name, attribute = self.lazy_commands[name].import_path.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, from the lazy map for commands not loaded yet."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # A stand-in built from the map's line shortens it exactly as click would.
            command = self.commands.get(name) or click.Command(
                name, help=self.lazy_commands[name].short_help
            )
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


COMMANDS = {
    "bounces": LazyCommand(
        "digest.cli.bounces_cmds:bounces_cmd",
        "Read bounces (RFC 3464 and others) and complaints (ARF) and act on them.",
    ),
    "check": LazyCommand(
        "digest.cli.check_cmds:check_cmd",
        "Fetch the URL and images of each post NAME would send now; exit 1 if a post is not live.",
    ),
    "db": LazyCommand("digest.cli.db_cmds:db", "The database schema."),
    "demo": LazyCommand(
        "digest.cli.demo_cmds:demo",
        "Run the whole job here: example posts, subscribers, a real SMTP send into demo-outbox/.",
    ),
    "doctor": LazyCommand(
        "digest.cli.doctor_cmds:doctor_cmd",
        "Check the setup a sender needs: one line per check with pass, warn or fail, and the fix.",
    ),
    "explain": LazyCommand(
        "digest.cli.explain_cmds:explain_cmd",
        "Why each post of the site is in or out of digest NAME at time T.",
    ),
    "history": LazyCommand("digest.cli.send_cmds:history_cmd", "Past runs, newest first."),
    "posts": LazyCommand(
        "digest.cli.posts_cmds:posts_command",
        "The posts that are new for a digest at time T (every parsed post with --all).",
    ),
    "preview": LazyCommand(
        "digest.cli.preview_cmds:preview",
        "Render digest NAME (inlined HTML, or the text part) without sending or recording"
        " anything.",
    ),
    "report": LazyCommand(
        "digest.cli.report_cmds:report_cmd",
        "One self-contained HTML file with charts of the list and its runs.",
    ),
    "schedule": LazyCommand(
        "digest.cli.schedule_cmds:schedule_cmd",
        "Run the scheduler: each digest fires on its crontab in site.timezone.",
    ),
    "send": LazyCommand(
        "digest.cli.send_cmds:send_cmd",
        "Send the digest NAME to every active subscriber with new posts.",
    ),
    "send-test": LazyCommand(
        "digest.cli.send_cmds:send_test_cmd",
        'Send NAME as it would go out now to one address (Subject "[TEST] ..."); records nothing.',
    ),
    "serve": LazyCommand(
        "digest.cli.serve_cmds:serve_cmd",
        "Serve the sign-up, confirmation, preferences and unsubscribe pages, and more.",
    ),
    "subscribers": LazyCommand(
        "digest.cli.subscribers_cmds:subscribers",
        "Add, remove, list, import and export subscribers.",
    ),
}


def _show_version(ctx: click.Context, value: bool) -> None:
    """`digest, version X` as click's version_option says it, without importlib.metadata."""
    if not value or ctx.resilient_parsing:
        return
    from digest import __version__

    click.echo(f"digest, version {__version__}")
    ctx.exit()


@click.group(
    cls=DigestGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="The YAML config (default: $DIGEST_CONFIG, else ./config.yaml).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug); never secrets.")
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _param, value: _show_version(ctx, value),
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """digest: newsletter digests for Jekyll and Hugo blogs and RSS/Atom/JSON feeds, sent once.

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


def table_or_json_option(func: F) -> F:
    """The shared --format option of the commands that list things: a table or JSON."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="A table to read, or JSON for scripts.",
    )(func)


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
