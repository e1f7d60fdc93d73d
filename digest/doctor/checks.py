"""The checks of `digest doctor`, in the order a sender would fix them.

config ─► doctor: each check is a small function returning Check rows; none sends mail or
changes the database. DNS goes through doctor.dns; SMTP through smtp.client.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from digest.doctor.dns import Dns, DnsLookupError
from digest.errors import DigestError
from digest.settings import Settings, SmtpSettings

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    check: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def _org(domain: str) -> str:
    """The organisational domain, roughly (the last two labels): for relaxed alignment."""
    return ".".join(domain.split(".")[-2:])


def _config(settings: Settings) -> Iterator[Check]:
    digests = ", ".join(settings.digests) or "none"
    yield Check("config", PASS, f"{settings.source} read (digests: {digests})")


def _database(settings: Settings) -> Iterator[Check]:
    from digest.store import masked_url, open_store
    from digest.store.subscribers import list_subscribers

    try:
        store = open_store(settings.database.url)
        try:
            count = len(list_subscribers(store))
        finally:
            store.dispose()
    except DigestError as exc:
        yield Check("database", FAIL, exc.message, "check database.url and that the server runs")
        return
    yield Check("database", PASS, f"{masked_url(settings.database.url)}: {count} subscribers")


def _loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
        )
    except (OSError, ValueError):
        return False


def _relays(settings: Settings) -> Iterator[Check]:
    """Connect, TLS and AUTH of every relay (a fallback that cannot log in is found now, not
    during the outage it is there for); one relay's checks are named `smtp ...`, several
    relays' `smtp NAME ...`."""
    for relay in settings.relays:
        name = "smtp" if len(settings.relays) == 1 else f"smtp {relay.name}"
        yield from _relay(settings, relay, name)


def _relay(settings: Settings, smtp: SmtpSettings, name: str) -> Iterator[Check]:
    from digest.errors import SmtpAuthError
    from digest.smtp.client import SmtpSender, helo_name

    where = f"{smtp.host}:{smtp.port}"
    try:
        with SmtpSender(smtp, local_hostname=helo_name(settings.email.from_address)) as sender:
            sender.connect()
            sender.noop()
    except SmtpAuthError as exc:
        yield Check(f"{name} connect", PASS, f"{where} answers")
        yield Check(f"{name} AUTH", FAIL, exc.message, "fix smtp.username / smtp.password")
        return
    except DigestError as exc:
        yield Check(
            f"{name} connect", FAIL, exc.message, "check smtp.host, smtp.port and the firewall"
        )
        return
    yield Check(f"{name} connect", PASS, f"{where} answers")
    loopback = _loopback(smtp.host)
    if smtp.security == "none":
        if loopback:
            yield Check(f"{name} TLS", PASS, f"{where} is on this machine: no TLS needed")
        else:
            yield Check(
                f"{name} TLS",
                FAIL,
                f"{where}: mail and the password cross the network in clear",
                "set smtp.security: starttls (port 587) or ssl (port 465)",
            )
    else:
        yield Check(f"{name} TLS", PASS, f"{smtp.security}, certificate verified")
    if smtp.username:
        yield Check(f"{name} AUTH", PASS, f"logged in as {smtp.username}")
    else:
        status = PASS if loopback else WARN
        yield Check(
            f"{name} AUTH",
            status,
            "no smtp.username: the relay takes mail without a login",
            "" if loopback else "most relays need smtp.username and smtp.password",
        )


def _one_click(settings: Settings) -> Iterator[Check]:
    import httpx

    base = settings.web.base_url
    url = f"{base}/unsubscribe/doctor-check"
    try:
        reply = httpx.post(
            url,
            data={"List-Unsubscribe": "One-Click"},
            follow_redirects=False,
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        yield Check(
            "one-click unsubscribe",
            FAIL,
            f"POST {url}: {type(exc).__name__}: {exc}"[:200],
            "run `digest serve` behind web.base_url (a public HTTPS address)",
        )
        return
    if reply.is_redirect:
        yield Check(
            "one-click unsubscribe",
            FAIL,
            f"POST {url} answers {reply.status_code} (a redirect); RFC 8058 wants an answer",
            "let the proxy pass POST /unsubscribe/ to `digest serve` without redirecting",
        )
    elif reply.status_code >= 500:
        yield Check(
            "one-click unsubscribe",
            FAIL,
            f"POST {url} answers {reply.status_code}",
            "check `digest serve` logs",
        )
    elif not base.startswith("https://"):
        yield Check(
            "one-click unsubscribe",
            WARN,
            f"POST {url} answers {reply.status_code} without a redirect, but over plain HTTP",
            "serve web.base_url over HTTPS: Gmail and Yahoo want an https one-click link",
        )
    else:
        yield Check(
            "one-click unsubscribe",
            PASS,
            f"POST {url} answers {reply.status_code} without a redirect",
        )


def _dkim(settings: Settings, dns: Dns) -> Iterator[Check]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from digest.mail.dkim import load_dkim_signer

    dkim = settings.email.dkim
    if dkim is None:
        yield Check(
            "DKIM",
            WARN,
            "digest does not sign (email.dkim is not set); fine if the relay signs for you",
            "set email.dkim {domain, selector, private_key_file}, or let the relay sign",
        )
        return
    try:
        signer = load_dkim_signer(dkim.domain, dkim.selector, dkim.private_key_file)
    except DigestError as exc:
        yield Check("DKIM", FAIL, exc.message, "fix email.dkim.private_key_file")
        return
    try:
        records = [r for r in dns.txt(signer.dns_name) if "p=" in r]
    except DnsLookupError as exc:
        yield Check("DKIM", WARN, f"DNS did not answer: {exc}", "try again, or check DNS")
        return
    publish = f'publish TXT {signer.dns_name} "{signer.dns_record}"'
    if not records:
        yield Check("DKIM", FAIL, f"no DKIM record at {signer.dns_name}", publish)
        return
    tags = dict(part.strip().split("=", 1) for part in records[0].split(";") if "=" in part)
    published = "".join(tags.get("p", "").split())
    if published != signer.public_key.decode("ascii"):
        yield Check(
            "DKIM",
            FAIL,
            f"the key at {signer.dns_name} is not the one in email.dkim.private_key_file",
            publish,
        )
        return
    key = serialization.load_der_public_key(base64.b64decode(published))
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        status = FAIL if key.key_size < 1024 else WARN
        yield Check(
            "DKIM",
            status,
            f"{signer.dns_name} matches, but the RSA key has {key.key_size} bits",
            "make a 2048-bit key and publish it under a new selector",
        )
        return
    yield Check("DKIM", PASS, f"{signer.dns_name} publishes the signing key")


def _spf(settings: Settings, dns: Dns, domain: str) -> Iterator[Check]:
    try:
        records = [r for r in dns.txt(domain) if r.lower().startswith("v=spf1")]
    except DnsLookupError as exc:
        yield Check("SPF", WARN, f"DNS did not answer: {exc}", "try again, or check DNS")
        return
    if not records:
        yield Check(
            "SPF",
            FAIL,
            f"{domain} has no SPF record",
            f'publish TXT {domain} "v=spf1 include:<your relay> ~all"',
        )
        return
    if len(records) > 1:
        yield Check(
            "SPF", FAIL, f"{domain} has {len(records)} SPF records (a PermError)", "merge into one"
        )
        return
    record = records[0]
    ending = record.split()[-1].lower()
    if ending in ("+all", "all"):
        yield Check("SPF", FAIL, f"{domain}: {record} lets anyone send", "end it with ~all or -all")
    elif ending in ("?all",) or not ending.endswith("all"):
        yield Check("SPF", WARN, f"{domain}: {record} is neutral", "end it with ~all or -all")
    else:
        yield Check("SPF", PASS, f"{domain}: {record}")


def _dmarc(settings: Settings, dns: Dns, domain: str) -> Iterator[Check]:
    name = f"_dmarc.{domain}"
    try:
        records = [r for r in dns.txt(name) if r.lower().startswith("v=dmarc1")]
    except DnsLookupError as exc:
        yield Check("DMARC", WARN, f"DNS did not answer: {exc}", "try again, or check DNS")
        return
    if not records:
        yield Check(
            "DMARC",
            FAIL,
            f"no DMARC record at {name}",
            f'publish TXT {name} "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"',
        )
        return
    tags = {
        k.strip().lower(): v.strip()
        for k, _, v in (p.partition("=") for p in records[0].split(";"))
    }
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        yield Check("DMARC", FAIL, f"{name}: no valid p= ({records[0]})", "set p=none at least")
    else:
        yield Check("DMARC", PASS, f"{name}: p={policy}")


def _alignment(settings: Settings, domain: str) -> Iterator[Check]:
    dkim = settings.email.dkim
    bounce = settings.email.bounce_address
    envelope = domain_of(bounce) if bounce else domain
    dkim_ok = dkim is not None and _org(dkim.domain.lower()) == _org(domain)
    spf_ok = _org(envelope) == _org(domain)
    if dkim_ok or spf_ok:
        how = " and ".join(
            w
            for w, ok in (
                ("DKIM d=" + (dkim.domain if dkim else ""), dkim_ok),
                (f"SPF ({envelope})", spf_ok),
            )
            if ok
        )
        yield Check("alignment", PASS, f"From {domain} aligns with {how}")
    else:
        yield Check(
            "alignment",
            FAIL,
            f"From {domain} aligns with neither DKIM nor the envelope sender ({envelope})",
            "sign with a DKIM key of the From domain, or send MAIL FROM that domain",
        )


def _ptr(settings: Settings, dns: Dns) -> Iterator[Check]:
    host = settings.smtp.host
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, socket.AF_INET)}
    except OSError:
        return  # the connect check already said so
    for address in sorted(addresses):
        if ipaddress.ip_address(address).is_loopback or ipaddress.ip_address(address).is_private:
            yield Check(
                "PTR",
                PASS,
                f"relay {host} is {address} (this machine or a private network): the PTR that "
                "counts is the one of the server that hands mail to the Internet",
            )
            continue
        try:
            names = dns.ptr(address)
        except DnsLookupError as exc:
            yield Check("PTR", WARN, f"DNS did not answer: {exc}", "try again, or check DNS")
            continue
        if names:
            yield Check("PTR", PASS, f"{address} is {names[0]}")
        else:
            yield Check(
                "PTR", WARN, f"{address} ({host}) has no PTR record", "ask the relay's provider"
            )


def _headers(settings: Settings) -> Iterator[Check]:
    from email import message_from_bytes, policy

    from digest.mail.message import MessageTemplate
    from digest.render.renderer import Renderer

    if not settings.digests:
        return
    digest = next(iter(settings.digests.values()))
    renderer = Renderer(settings)
    segment = renderer.render_segment(digest, [], as_of=datetime.now(UTC))
    built = MessageTemplate(settings, digest, segment, renderer).build(
        to_email="doctor@example.com",
        to_name="",
        unsubscribe_url=f"{settings.web.base_url}/unsubscribe/doctor",
    )
    message = message_from_bytes(built.data, policy=policy.default)
    link = str(message.get("List-Unsubscribe", ""))
    post = str(message.get("List-Unsubscribe-Post", ""))
    if "<https://" in link and post == "List-Unsubscribe=One-Click":
        yield Check("List-Unsubscribe", PASS, f"{link[:80]} with one-click POST")
    elif "<http://" in link and post == "List-Unsubscribe=One-Click":
        yield Check(
            "List-Unsubscribe",
            WARN,
            f"{link[:80]}: one-click over plain HTTP",
            "set web.base_url to the public https:// address of `digest serve`",
        )
    else:
        yield Check(
            "List-Unsubscribe",
            FAIL,
            f"List-Unsubscribe {link[:80] or 'missing'}; one-click {post or 'missing'}",
            "set web.base_url to the public https:// address of `digest serve`",
        )
    if message.get("Feedback-ID"):
        yield Check("Feedback-ID", PASS, str(message["Feedback-ID"]))
    else:
        yield Check(
            "Feedback-ID",
            WARN,
            "no Feedback-ID header (Gmail's feedback loop groups complaints by it)",
            'set email.feedback_id, e.g. "{digest}:{run}:newsletter:blogname"',
        )


def run_doctor(settings: Settings, *, nameserver: str | None = None) -> list[Check]:
    """Every check, in order; DNS through `nameserver` (HOST or HOST:PORT) when given."""
    dns = Dns(nameserver)
    domain = domain_of(settings.email.from_address)
    steps: list[Callable[[], Iterator[Check]]] = [
        lambda: _config(settings),
        lambda: _database(settings),
        lambda: _relays(settings),
        lambda: _one_click(settings),
        lambda: _dkim(settings, dns),
        lambda: _spf(settings, dns, domain),
        lambda: _dmarc(settings, dns, domain),
        lambda: _alignment(settings, domain),
        lambda: _ptr(settings, dns),
        lambda: _headers(settings),
    ]
    return [check for step in steps for check in step()]
