"""`digest subscribers import FILE --from SERVICE`: other services' exports as they write them
(tests/data/exports), statuses kept, consent times carried over, the unsubscribed and cleaned
never mailed; and digest's own export round-trips the consent record."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from tests.conftest import SmtpServer
from tests.helpers.site_fixtures import AS_OF, Site, make_site

EXPORTS = Path(__file__).resolve().parent.parent / "data" / "exports"

# service -> (file, {email: status}, {email: (requested_at, confirmed_at)}, unused columns)
CASES: dict[str, tuple[str, dict[str, str], dict[str, tuple[str | None, str | None]], str]] = {
    "mailchimp": (
        "mailchimp.zip",
        {
            "ada@example.com": "active",
            "grace@example.com": "active",
            "left@example.com": "unsubscribed",
            "gone@example.com": "bounced",
        },
        {
            "ada@example.com": ("2021-03-04T10:11:12+00:00", "2021-03-04T10:15:40+00:00"),
            "gone@example.com": ("2019-05-05T05:05:05+00:00", "2019-05-05T05:06:00+00:00"),
        },
        "address, phone number, birthday, member_rating",
    ),
    "substack": (
        "substack.csv",
        {
            "reader@example.com": "active",
            "payer@example.com": "active",
            "muted@example.com": "unsubscribed",
        },
        {"payer@example.com": ("2021-11-20T08:30:00+00:00", None)},
        "active_subscription, expiry, plan, first_payment_at",
    ),
    "ghost": (
        "ghost.csv",
        {
            "supporter@example.com": "active",
            "reader@example.com": "active",
            "quiet@example.com": "unsubscribed",
        },
        {"supporter@example.com": ("2024-01-15T10:00:00+00:00", None)},
        "id, note, complimentary_plan, stripe_customer_id, labels, tiers",
    ),
    "buttondown": (
        "buttondown.csv",
        {
            "one@example.com": "active",
            "two@example.com": "active",
            "three@example.com": "pending",
            "four@example.com": "unsubscribed",
            "five@example.com": "bounced",
        },
        {"one@example.com": ("2023-05-01T09:30:00.123456+00:00", None)},
        "id, notes, tags, referrer_url, source",
    ),
    "listmonk": (
        "listmonk.csv",
        {
            "john@example.com": "active",
            "jane@example.com": "unsubscribed",
            "off@example.com": "unsubscribed",
        },
        {
            "john@example.com": ("2024-01-15T10:00:00.123456+00:00", None),
            "off@example.com": ("2023-04-10T02:45:00+00:00", None),
        },
        "uuid, attributes, updated_at",
    ),
}


def mailchimp_zip(folder: Path) -> Path:
    """The audience export as Mailchimp hands it out: one zip of the three CSVs."""
    path = folder / "mailchimp.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for csv_file in sorted((EXPORTS / "mailchimp").glob("*.csv")):
            archive.write(csv_file, csv_file.name)
    return path


@pytest.fixture
def site(tmp_path: Path, migrated_sqlite_url: str, smtp_server: SmtpServer) -> Site:
    site = make_site(tmp_path / "site", migrated_sqlite_url, smtp_server.port)
    site.add_post("Fresh News", days_ago=1)
    return site


def run(site: Site, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(site.config_path), *args])


def listed(site: Site) -> dict[str, dict[str, object]]:
    result = run(site, "subscribers", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return {row["email"]: row for row in json.loads(result.stdout)}


@pytest.mark.parametrize("service", sorted(CASES))
def test_each_services_export_imports_with_statuses_and_consent(
    service: str, site: Site, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    name, statuses, times, unused = CASES[service]
    path = mailchimp_zip(tmp_path) if name.endswith(".zip") else EXPORTS / name
    result = run(site, "subscribers", "import", str(path), "--from", service)
    assert result.exit_code == 0, result.output
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    by_status = ", ".join(
        f"{counts[s]} {s}" for s in ("pending", "active", "unsubscribed", "bounced") if s in counts
    )
    assert result.stdout == (
        f"imported: {len(statuses)} added ({by_status}), 0 updated, 0 unchanged, 0 skipped\n"
    )
    # Unknown columns are named once (not per row, not fatal).
    assert result.stderr.count("columns not used:") == 1
    assert f"columns not used: {unused}" in result.stderr

    rows = listed(site)
    assert {email: row["status"] for email, row in rows.items()} == statuses
    for email, (asked, confirmed) in times.items():
        consent = rows[email]["consent"]
        assert consent == {
            "requested_at": asked,
            "confirmed_at": confirmed,
            "source": f"import:{service}",
            "ip": consent["ip"],  # type: ignore[index]
        }
    if service == "mailchimp":  # OPTIN_IP is kept only as a keyed hash
        ip = rows["ada@example.com"]["consent"]["ip"]  # type: ignore[index]
        assert isinstance(ip, str) and len(ip) == 32 and "203.0.113.7" not in ip
        assert "203.0.113.7" not in result.output

    sent = run(site, "send", "weekly", "--as-of", AS_OF.isoformat())
    assert sent.exit_code == 0, sent.output
    mailed = {rcpt for m in smtp_server.handler.messages for rcpt in m.rcpt_tos}
    assert mailed == {email for email, status in statuses.items() if status == "active"}


def test_a_second_import_takes_the_unsubscribed_out_and_never_back_in(
    site: Site, tmp_path: Path
) -> None:
    assert run(site, "subscribers", "add", "left@example.com").exit_code == 0
    assert run(site, "subscribers", "unsubscribe", "grace@example.com").exit_code == 2
    assert run(site, "subscribers", "add", "grace@example.com").exit_code == 0
    assert run(site, "subscribers", "unsubscribe", "grace@example.com").exit_code == 0
    path = mailchimp_zip(tmp_path)
    result = run(site, "subscribers", "import", str(path), "--from", "mailchimp")
    assert result.exit_code == 0, result.output
    rows = listed(site)
    assert rows["left@example.com"]["status"] == "unsubscribed"  # left there: out here too
    assert rows["grace@example.com"]["status"] == "unsubscribed"  # left here: stays out


def test_export_with_consent_round_trips_the_record(site: Site, tmp_path: Path) -> None:
    path = mailchimp_zip(tmp_path)
    assert run(site, "subscribers", "import", str(path), "--from", "mailchimp").exit_code == 0
    before = listed(site)
    out = tmp_path / "export.csv"
    result = run(site, "subscribers", "export", "--with-consent", "--out", str(out))
    assert result.exit_code == 0, result.output
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == (
        "email,name,categories,status,created_at,"
        "consent_requested_at,consent_confirmed_at,consent_source,consent_ip"
    )
    other = make_site(tmp_path / "other", f"sqlite:///{tmp_path / 'other.db'}", 1)
    result = run(other, "subscribers", "import", str(out))
    assert result.exit_code == 0, result.output
    after = listed(other)
    assert {e: (r["status"], r["consent"]) for e, r in after.items()} == {
        e: (r["status"], r["consent"]) for e, r in before.items()
    }


def test_csv_categories_split_on_semicolons_and_commas_alike(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        'email,categories\na@example.com,"release, community"\nb@example.com,Machine Learning;Go\n',
        encoding="utf-8",
    )
    assert run(site, "subscribers", "import", str(path)).exit_code == 0
    rows = listed(site)
    assert rows["a@example.com"]["categories"] == ["release", "community"]
    assert rows["b@example.com"]["categories"] == ["Machine Learning", "Go"]
