"""A real Dovecot IMAP server for the bounce mailbox tests: TLS with a CA the test makes.

Started from Debian's dovecot-imapd (`.ci/run` installs it) on a free loopback port, in a tmp dir.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from digest.demo import free_port

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
)
USER = "bounces"
PASSWORD = "imap-test-password-42"


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int
    ca_file: Path
    log: Path

    def client(self) -> imaplib.IMAP4_SSL:
        """A logged-in client, to put test messages into the mailbox and look at it."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=10)
        client.login(USER, PASSWORD)
        return client


def _config(root: Path, port: int) -> str:
    if os.geteuid() == 0:
        # Dovecot will not open mail as root: the mailbox belongs to nobody.
        mail_user = pwd.getpwnam("nobody")
        users = ""
    else:
        mail_user = pwd.getpwuid(os.getuid())
        name = mail_user.pw_name
        users = f"default_internal_user = {name}\ndefault_login_user = {name}\n"
    home = root / "home"
    home.mkdir()
    if os.geteuid() == 0:
        os.chown(home, mail_user.pw_uid, mail_user.pw_gid)
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{users}protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not listen on {port}")


@contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """Dovecot on 127.0.0.1 and a free port, implicit TLS, one user; stopped afterwards."""
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd; .ci/run does)")
    # A short path: Dovecot's sockets live under base_dir and UNIX socket paths are short.
    root = Path(tempfile.mkdtemp(prefix="dc-"))
    root.chmod(0o755)  # the login processes run as another user
    try:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        port = free_port()
        (root / "dovecot.conf").write_text(_config(root, port))
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port, process, root / "dovecot.log")
            yield Dovecot("127.0.0.1", port, root / "ca.pem", root / "dovecot.log")
        finally:
            process.terminate()
            process.wait(timeout=15)
    finally:
        shutil.rmtree(root, ignore_errors=True)
