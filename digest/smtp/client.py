"""SMTP sessions: connect, TLS (always verified), AUTH, NOOP, QUIT; the transaction is stream's.

smtp.stream ─► smtp.client: smtp is the only home of smtplib; its errors become ours here.

Credentials are never sent over a plain connection: with `security: none` a username is accepted
only for a loopback host (a local relay); anything else is a ConfigError. Debug output of smtplib
is never switched on, because it would print the AUTH exchange (the password, base64-encoded).
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import socket
import ssl
from functools import lru_cache
from types import TracebackType

from digest.errors import (
    ConfigError,
    SmtpAuthError,
    SmtpConnectError,
    SmtpTimeoutError,
    escape_controls,
)
from digest.settings.smtp import SmtpSettings
from digest.smtp.rate_limit import RateLimiter as RateLimiter
from digest.smtp.replies import auth_secrets, redact, reply_text

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ssl_context(smtp: SmtpSettings) -> ssl.SSLContext:
    cafile = str(smtp.ca_file) if smtp.ca_file is not None else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"smtp.ca_file: cannot load CA bundle {cafile}: {exc}") from exc


def check_credentials_policy(smtp: SmtpSettings) -> None:
    """ConfigError when a password would travel over a plain connection to another machine."""
    if smtp.username and smtp.security == "none" and not _is_loopback(smtp.host):
        raise ConfigError(
            f"smtp.security is none but smtp.username is set: refusing to send the password "
            f"for {smtp.username!r} to {smtp.host}:{smtp.port} without TLS "
            "(use security: starttls or ssl; plain AUTH is allowed only to a loopback relay)"
        )


@lru_cache(maxsize=1)
def _fqdn() -> str:
    return socket.getfqdn()  # may ask DNS: once per process


def helo_name(from_addr: str) -> str:
    """The name we give in EHLO/HELO: this machine's FQDN, else the From address's domain.

    A bare host name ("web1") is what smtplib would send, and relays may refuse or score it.
    """
    fqdn = _fqdn()
    if "." in fqdn.strip(".") and fqdn.isascii():
        return fqdn
    domain = from_addr.rsplit("@", 1)[-1].strip().lower()
    try:
        return domain.encode("idna").decode("ascii") or "localhost"
    except UnicodeError:
        return "localhost"


class SmtpSender:
    """One SMTP connection, opened on first use and reused for every message after it."""

    def __init__(
        self,
        smtp: SmtpSettings,
        *,
        limiter: RateLimiter | None = None,
        local_hostname: str | None = None,
    ) -> None:
        check_credentials_policy(smtp)
        self.smtp = smtp
        self.limiter = limiter
        self.local_hostname = local_hostname
        self.connections = 0  # sessions opened so far (for reports and tests)
        self.answered = 0  # final dots the relay answered on the open session
        self._conn: smtplib.SMTP | None = None
        self._context = _ssl_context(smtp) if smtp.security != "none" else None

    @property
    def where(self) -> str:
        return escape_controls(f"{self.smtp.host}:{self.smtp.port}")

    def _fail(self, reason: str, exc: BaseException | None = None) -> SmtpConnectError:
        hint = None
        if isinstance(exc, TimeoutError):
            return SmtpTimeoutError(
                f"cannot connect to SMTP server {self.where}: no answer within smtp.timeout "
                f"({self.smtp.timeout:g} s)"
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = f"the server's TLS certificate was not trusted ({exc.verify_message or exc})"
            hint = "if the relay uses a private CA, point smtp.ca_file at its certificate"
        return SmtpConnectError(f"cannot connect to SMTP server {self.where}: {reason}", hint=hint)

    def _open(self) -> smtplib.SMTP:
        smtp = self.smtp
        try:
            conn: smtplib.SMTP
            if smtp.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    smtp.host,
                    smtp.port,
                    local_hostname=self.local_hostname,
                    timeout=smtp.timeout,
                    context=self._context,
                )
            else:
                conn = smtplib.SMTP(
                    smtp.host, smtp.port, local_hostname=self.local_hostname, timeout=smtp.timeout
                )
        except ssl.SSLCertVerificationError as exc:
            raise self._fail("", exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise self._fail(str(exc) or type(exc).__name__, exc) from exc
        try:
            self._start(conn)
        except BaseException:
            conn.close()
            raise
        self.connections += 1
        self.answered = 0
        log.debug("SMTP session %d opened to %s", self.connections, self.where)
        return conn

    def _start(self, conn: smtplib.SMTP) -> None:
        smtp = self.smtp
        try:
            conn.ehlo_or_helo_if_needed()
            if smtp.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise SmtpConnectError(
                        f"{self.where} does not offer STARTTLS",
                        hint="use smtp.security: ssl (port 465) or a relay that offers STARTTLS",
                    )
                conn.starttls(context=self._context)
                conn.ehlo()
        except ssl.SSLCertVerificationError as exc:
            raise self._fail("", exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise self._fail(f"TLS setup failed: {exc}", exc) from exc
        if smtp.username:
            self._login(conn)

    def _login(self, conn: smtplib.SMTP) -> None:
        smtp = self.smtp
        password = smtp.password.get_secret_value()
        who = f"user {smtp.username!r} at {self.where}"
        try:
            conn.login(smtp.username, password)
        except smtplib.SMTPAuthenticationError as exc:
            reply = redact(reply_text(exc.smtp_error), auth_secrets(smtp.username, password))
            raise SmtpAuthError(
                f"SMTP login refused for {who}: {exc.smtp_code} {reply}",
                hint="check smtp.username and smtp.password",
            ) from None  # the cause carries nothing the message lacks, and it could echo input
        except smtplib.SMTPNotSupportedError:
            raise SmtpAuthError(
                f"SMTP login impossible for {who}: the server offers no AUTH"
            ) from None
        except smtplib.SMTPException as exc:
            raise SmtpAuthError(f"SMTP login failed for {who}: {type(exc).__name__}") from None
        except OSError as exc:
            raise self._fail(f"connection lost during login: {exc}", exc) from exc

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def session(self) -> smtplib.SMTP:
        """The open session (connect, STARTTLS, AUTH on first use), for smtp.stream."""
        return self._connection()

    def drop(self) -> None:
        """Forget the session without QUIT (it failed under us); the next use reconnects."""
        self._drop()

    def connect(self) -> None:
        """Open the session now instead of on the first send (connect, STARTTLS, AUTH)."""
        self._connection()

    def noop(self) -> None:
        """Check the open session answers (NOOP); SmtpConnectError if it does not."""
        conn = self._connection()
        try:
            code, reply = conn.noop()
        except (smtplib.SMTPException, OSError) as exc:
            raise self._fail(str(exc), exc) from exc
        if code != 250:
            raise self._fail(f"NOOP answered {code} {reply_text(reply)}")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """QUIT politely; close the socket whatever happens."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_smtp(smtp: SmtpSettings, *, local_hostname: str | None = None) -> None:
    """Connect, STARTTLS, AUTH and QUIT: raises SmtpConnectError or SmtpAuthError if it can't."""
    with SmtpSender(smtp, local_hostname=local_hostname) as sender:
        sender.noop()
