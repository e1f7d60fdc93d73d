"""Where the real sites and feeds with their generators' oracles are: ../shared/realsites from
the repo root, or $DIGEST_REALSITES; tests that need them skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

REALSITES = Path(
    os.environ.get("DIGEST_REALSITES")
    or Path(__file__).resolve().parents[2].parent / "shared" / "realsites"
)


def absent(what: Path) -> str:
    """The skip reason when `what` (a folder of real sites or feeds) is not there."""
    return f"no real sites at {what} (set DIGEST_REALSITES to the folder that holds them)"
