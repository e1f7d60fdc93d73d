"""Benchmark: CSV import and export of many subscribers on SQLite (and PostgreSQL if given).

Run: .venv/bin/python bench/import_subscribers.py [ROWS] [POSTGRES_URL]; prints seconds per step.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from digest.addresses import normalise_email
from digest.store import open_store
from digest.store.subscriber_csv import ImportReport, export_csv, import_csv


def timed(label: str, func: Callable[[], object]) -> None:
    start = time.perf_counter()
    result = func()
    print(f"{label:<34} {time.perf_counter() - start:6.2f} s  {result}")


def summary(report: ImportReport) -> str:
    return f"added={report.added} updated={report.updated} unchanged={report.unchanged}"


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "subscribers.csv"
        lines = ["email,name,categories"]
        lines += [f"user{i}@example.org,User {i},news;tech" for i in range(rows)]
        csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        # The share of the import that is address validation alone (email-validator).
        timed(
            f"normalise_email x {rows}",
            lambda: len([normalise_email(f"user{i}@example.org") for i in range(rows)]),
        )
        for url in [f"sqlite:///{Path(tmp) / 'bench.db'}", *sys.argv[2:3]]:
            bench_store(url, csv_path, rows)


def bench_store(url: str, csv_path: Path, rows: int) -> None:
    store = open_store(url)
    try:
        kind = store.dialect
        timed(f"{kind}: import {rows} new", lambda: summary(import_csv(store, csv_path)))
        timed(f"{kind}: import {rows} again", lambda: summary(import_csv(store, csv_path)))
        timed(f"{kind}: export {rows}", lambda: export_csv(store, io.StringIO()))
    finally:
        store.dispose()


if __name__ == "__main__":
    main()
