"""Post dates as Jekyll reads them (Ruby's Time.parse, in the site's zone); with ruby installed,
a test checks the table against Ruby itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from zoneinfo import ZoneInfo

import pytest

from digest.sources.jekyll.dates import parse_date_text

BERLIN = ZoneInfo("Europe/Berlin")
# written -> what Ruby's Time.parse(...).localtime gives with TZ=Europe/Berlin ("": an error)
RUBY_READS = {
    "2021-02-08 16:30-:00+16:30": "2021-02-08T16:30:00+01:00",  # not a zone Ruby knows: local
    "Thu Jan 23 15:35:26 PST 2020": "2020-01-24T00:35:26+01:00",
    "Fri Sep  3 11:21:31 CEST 2021": "2021-09-03T11:21:31+02:00",  # the local zone's own name
    "2015-11-17 16:16:01 -0600": "2015-11-17T23:16:01+01:00",
    "2025-11-27T22:18:56Z": "2025-11-27T23:18:56+01:00",
    "2025-11-27 10:00 +1": "2025-11-27T10:00:00+01:00",  # `+1` is no offset to Ruby
    "2025-02-30": "2025-03-02T00:00:00+01:00",
    "9/11/2017": "2017-11-09T00:00:00+01:00",
    "27.11.2025 3pm": "2025-11-27T15:00:00+01:00",
    "November 27th, 2025": "2025-11-27T00:00:00+01:00",
    "2004-12-16 15:17:59.000000000 +00:00": "2004-12-16T16:17:59+01:00",
    "25-1-5": "2025-01-05T00:00:00+01:00",
    "next tuesday": "",
}


@pytest.mark.parametrize("written", sorted(RUBY_READS))
def test_a_date_is_read_as_ruby_reads_it(written: str) -> None:
    parsed = parse_date_text(written, BERLIN)
    assert (parsed.isoformat() if parsed else "") == RUBY_READS[written]


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed")
def test_the_table_is_what_ruby_reads() -> None:
    script = 'require "time"; ARGV.each { |t| puts((Time.parse(t).localtime.iso8601 rescue "")) }'
    written = sorted(RUBY_READS)
    result = subprocess.run(
        ["ruby", "-e", script, *written],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "Europe/Berlin"},
    )
    assert dict(zip(written, result.stdout.splitlines(), strict=True)) == RUBY_READS


@pytest.mark.parametrize("written", ["29 Feb 3023246009", "2024-13-01", "10000-01-01 10:00 +0100"])
def test_a_year_python_cannot_hold_is_no_date_not_a_crash(written: str) -> None:
    # Ruby reads year 3023246009; a datetime cannot hold it, so the post is listed as bad-date
    # (it raised OverflowError before, which stopped the whole load).
    assert parse_date_text(written, BERLIN) is None
