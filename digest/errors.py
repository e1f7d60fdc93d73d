"""The `DigestError` family: every expected failure, with a message, a hint and an exit code.

The library raises these; only the doors (cli, scheduler, web) present them.
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# A warning about one post stays one readable line, whatever the post holds.
MAX_POST_PROBLEM = 300


def escape_controls(text: str) -> str:
    """`text` with control characters (CR, LF, ESC, ...) written as escapes, for one safe line."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) if _is_control(ch) else ch for ch in text)


def _is_control(ch: str) -> bool:
    # C0/C1 controls, DEL, and the Unicode line and paragraph separators.
    code = ord(ch)
    return code < 32 or 127 <= code < 160 or code in (0x2028, 0x2029)


def _escape(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def clipped(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DigestError(Exception):
    """An expected failure: one clear message naming the thing at fault."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Values echoed from config, files or servers may hold CR/LF: a message is one line.
        message = escape_controls(message)
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else escape_controls(hint)

    def __str__(self) -> str:
        return self.message


class BadInputError(DigestError):
    """The user gave something we cannot use (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BadInputError):
    """The config file is unreadable or invalid; the message names the file and the key."""


class UnknownDigestError(BadInputError):
    """A digest name that the config does not define."""


class InvalidAddressError(BadInputError):
    """An email address (or a display name) that cannot be used."""


class PostError(DigestError):
    """One post file cannot be read; it is skipped and reported, the others go on."""

    def __init__(self, path: str, reason: str) -> None:
        path = escape_controls(path)
        if len(path) > MAX_POST_PROBLEM // 2:
            path = "…" + path[-(MAX_POST_PROBLEM // 2 - 1) :]
        reason = clipped(escape_controls(reason), MAX_POST_PROBLEM - len(path) - 2)
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[PostError], tuple[str, str]]:
        # Pickled by its two parts (a reader process hands problems back); both are already
        # escaped and clipped, and doing that again changes nothing.
        return type(self), (self.path, self.reason)


class BadDateError(PostError):
    """A post whose date cannot be read: listed as `bad-date` (never sent), with what is known."""

    def __init__(self, path: str, reason: str, *, title: str = "", url: str = "") -> None:
        super().__init__(path, reason)
        self.title = title
        self.url = url

    def __reduce__(self) -> tuple[type[PostError], tuple[str, str]]:
        return _bad_date, (self.path, self.reason, self.title, self.url)  # type: ignore[return-value]


def _bad_date(path: str, reason: str, title: str, url: str) -> BadDateError:
    return BadDateError(path, reason, title=title, url=url)


class NotFoundError(BadInputError):
    """A subscriber, run or other record that does not exist."""


class DatabaseError(DigestError):
    """The database cannot be reached or used (exit 1)."""


class DatabaseGoneError(DatabaseError):
    """The database lost its tables under us: deleted, replaced or emptied while running."""


class SmtpError(DigestError):
    """Talking to the SMTP server failed as a whole (unreachable, TLS, auth) (exit 1)."""


class SmtpConnectError(SmtpError):
    """The SMTP server cannot be reached or refused the session."""


class SmtpTimeoutError(SmtpConnectError):
    """The SMTP server did not answer within smtp.timeout."""


class SmtpAuthError(SmtpError):
    """The SMTP server refused our credentials."""


class SchedulerBusyError(DigestError):
    """Another scheduler holds the lease on this database (exit 1)."""


class MailboxError(DigestError):
    """The bounce mailbox (IMAP) cannot be reached, logged in to or read (exit 1)."""


class WebhookRefusedError(DigestError):
    """A relay webhook call that is unsigned, badly signed, stale or replayed (HTTP 401/403)."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class FeedError(DigestError):
    """The source feed cannot be fetched or parsed (exit 1); nothing is used up."""
