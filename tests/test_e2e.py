"""End to end through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

from tests.helpers.processes import digest_script

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    full_env.update(env or {})
    return subprocess.run(
        [digest_script(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    emls = sorted((tmp_path / "demo-outbox").glob("*.eml"))
    # ana (all), ben (Engineering), chloe (Culture), dan (News, Weather); erin (Sport) and the
    # unsubscribed finn get nothing.
    recipients = {
        str(message_from_bytes(p.read_bytes(), policy=policy.default)["To"]) for p in emls
    }
    assert len(emls) == 4, recipients
    assert not any("erin@" in r or "finn@" in r for r in recipients)
    html = (tmp_path / "preview.html").read_text(encoding="utf-8")
    assert "style=" in html  # CSS inlined
    assert "erin@example.com" in result.stdout  # the summary says who got nothing and why

    # The demo folder is a working site: the posts are now used up for `weekly`.
    listed = run("posts", "--digest", "weekly", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    history = run("history", "--format", "json", cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    runs = json.loads(history.stdout)
    assert runs[0]["digest"] == "weekly"
    assert runs[0]["sent"] == 4
    assert runs[0]["pending"] == 0
    assert (runs[0]["bounced_later"], runs[0]["complaints"]) == (0, 0)

    # Running the demo again starts over rather than failing or sending nothing.
    again = run("demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "demo-outbox").glob("*.eml"))) == 4


def test_demo_refuses_to_overwrite_a_real_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("site: {}\n", encoding="utf-8")
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 2
    assert "config.yaml exists" in result.stderr
    assert (tmp_path / "config.yaml").read_text(encoding="utf-8") == "site: {}\n"


def test_python_dash_m_is_the_same_program(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for command in ("demo", "posts", "preview", "send", "send-test", "history", "subscribers"):
        assert command in result.stdout


def test_example_config_preview_from_another_folder(tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    result = run(
        "--config",
        str(ROOT / "config.example.yaml"),
        "preview",
        "weekly",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "City council approves" in html
    assert "https://blog.example.com/assets/images/cycle-lanes.jpg" in html


def test_wheel_ships_templates_examples_and_migrations(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("digest-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "digest/templates/digest.html.j2" in names
    assert "digest/templates/digest.txt.j2" in names
    assert any(n.startswith("digest/examples/_posts/") and n.endswith(".md") for n in names)
    assert any(n.startswith("digest/store/migrations/versions/") for n in names)
