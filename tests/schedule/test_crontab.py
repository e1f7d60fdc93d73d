"""The crontab reader: standard field meaning, nicknames, and fire times across daylight saving."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.crontab import CrontabSchedule, check_crontab, latest_fire, parse_crontab

LONDON = ZoneInfo("Europe/London")


def fires(expression: str, start: datetime, count: int, tz: ZoneInfo = LONDON) -> list[datetime]:
    schedule = CrontabSchedule(check_crontab(expression, tz), tz)
    out: list[datetime] = []
    previous: datetime | None = None
    now = start
    for _ in range(count):
        nxt = schedule.get_next_fire_time(previous, now)
        assert nxt is not None
        out.append(nxt)
        previous = now = nxt
    return out


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


# --- crontab translation -------------------------------------------------------------------

# Saturday 2025-11-22 12:00: the next 09:00 of each weekday is Sun 23 ... Sat 29.
SATURDAY_NOON = at(2025, 11, 22, 12, 0)
WEEKDAYS = {
    "0": 23, "sun": 23, "1": 24, "mon": 24, "2": 25, "tue": 25, "3": 26, "wed": 26,
    "4": 27, "thu": 27, "5": 28, "fri": 28, "6": 29, "sat": 29, "7": 23,
    "MON": 24, "Fri": 28, "SUN": 23,
}  # fmt: skip


@pytest.mark.parametrize(("weekday", "day"), sorted(WEEKDAYS.items()))
def test_every_weekday_number_and_name_has_the_standard_meaning(weekday: str, day: int) -> None:
    [first] = fires(f"0 9 * * {weekday}", SATURDAY_NOON, 1)
    assert first == at(2025, 11, day, 9, 0)
    assert first.utcoffset() == timedelta(0)


def test_monday_by_name_and_by_number_is_monday_0900() -> None:
    for text in ("0 9 * * mon", "0 9 * * 1"):
        first = fires(text, SATURDAY_NOON, 1)[0]
        assert first.weekday() == 0 and (first.hour, first.minute) == (9, 0)


def test_every_15_minutes() -> None:
    assert fires("*/15 * * * *", at(2025, 6, 2, 10, 7), 4) == [
        at(2025, 6, 2, 10, 15),
        at(2025, 6, 2, 10, 30),
        at(2025, 6, 2, 10, 45),
        at(2025, 6, 2, 11, 0),
    ]


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 9 * * 1-5", [1, 2, 3, 4, 5, 8]),  # from Monday 1 Dec 00:00: skips the weekend
        ("0 9 * * mon-fri", [1, 2, 3, 4, 5, 8]),
        ("0 9 * * 1,3,5", [1, 3, 5, 8, 10, 12]),
        ("0 9 * * 1-5/2", [1, 3, 5, 8, 10, 12]),
        ("0 9 * * */2", [2, 4, 6, 7, 9, 11]),  # 0,2,4,6 = Sun, Tue, Thu, Sat
        ("0 9 * * sat,sun", [6, 7, 13, 14, 20, 21]),
        ("0 9 * * 5-7", [5, 6, 7, 12, 13, 14]),  # Fri, Sat, Sun (7)
    ],
)
def test_weekday_ranges_lists_and_steps(expression: str, days: list[int]) -> None:
    got = fires(expression, at(2025, 12, 1, 0, 0), 6)
    assert got == [at(2025, 12, d, 9, 0) for d in days]


def test_minute_hour_lists_and_ranges() -> None:
    assert fires("0,30 8-9 * * *", at(2025, 6, 2, 0, 0), 5) == [
        at(2025, 6, 2, 8, 0),
        at(2025, 6, 2, 8, 30),
        at(2025, 6, 2, 9, 0),
        at(2025, 6, 2, 9, 30),
        at(2025, 6, 3, 8, 0),
    ]


def test_month_names() -> None:
    assert fires("0 0 1 jan,JUL *", at(2025, 3, 1, 12, 0), 3) == [
        at(2025, 7, 1, 0, 0),
        at(2026, 1, 1, 0, 0),
        at(2026, 7, 1, 0, 0),
    ]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Vixie cron: the 13th OR any Friday (June 2025: Fridays 6, 13, 20, 27; 13 July is a Sunday).
    assert fires("0 9 13 * fri", at(2025, 6, 1, 0, 0), 8) == [
        at(2025, 6, 6, 9, 0),
        at(2025, 6, 13, 9, 0),
        at(2025, 6, 20, 9, 0),
        at(2025, 6, 27, 9, 0),
        at(2025, 7, 4, 9, 0),
        at(2025, 7, 11, 9, 0),
        at(2025, 7, 13, 9, 0),
        at(2025, 7, 18, 9, 0),
    ]


def test_a_starred_day_field_means_and_as_in_vixie_cron() -> None:
    # "*/2" starts with "*": both must match (odd days that are Mondays).
    assert fires("0 9 */2 * mon", at(2025, 6, 1, 0, 0), 4) == [
        at(2025, 6, 9, 9, 0),
        at(2025, 6, 23, 9, 0),
        at(2025, 7, 7, 9, 0),
        at(2025, 7, 21, 9, 0),
    ]


def test_parsed_fields() -> None:
    tab = parse_crontab("*/20 9 1,15 * 0,7")
    assert tab.minutes == {0, 20, 40}
    assert tab.weekdays == {0}
    assert tab.days_restricted and tab.weekdays_restricted


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 9 * * 8", "day of week 8 is out of range 0-7"),
        ("0 9 * * funday", "day of week 'funday' is not a number or a name (sun..sat)"),
        ("0 9 * foo *", "month 'foo' is not a number or a name (jan..dec)"),
        ("5-1 * * * *", "minute range '5-1' goes backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("0 9 * *", "has 4 fields; a crontab has 5"),
        ("0 9 ? * *", "cannot read '?'"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_invalid_crontabs_say_why(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        check_crontab(expression, LONDON)
    assert reason in str(info.value)


# --- daylight saving (Europe/London: 2025-03-30 01:00 -> 02:00, 2025-10-26 02:00 -> 01:00) ----

BST = timedelta(hours=1)


def test_spring_change_skipped_time_fires_once_after_the_gap() -> None:
    got = fires("30 1 * * *", at(2025, 3, 29, 0, 0), 3)
    assert got == [
        at(2025, 3, 29, 1, 30),
        at(2025, 3, 30, 2, 30),  # 01:30 does not exist that night: same offset after the jump
        at(2025, 3, 31, 1, 30),
    ]
    assert [g.utcoffset() for g in got] == [timedelta(0), BST, BST]
    assert [g.astimezone(UTC).hour for g in got] == [1, 1, 0]


def test_spring_change_never_fires_twice_for_the_same_instant() -> None:
    got = fires("30 1,2 * * *", at(2025, 3, 29, 12, 0), 3)
    assert got == [at(2025, 3, 30, 2, 30), at(2025, 3, 31, 1, 30), at(2025, 3, 31, 2, 30)]
    hourly = fires("30 * * * *", at(2025, 3, 30, 0, 0), 3)
    assert [h.isoformat() for h in hourly] == [
        "2025-03-30T00:30:00+00:00",
        "2025-03-30T02:30:00+01:00",
        "2025-03-30T03:30:00+01:00",
    ]


def test_autumn_change_ambiguous_time_fires_once() -> None:
    got = fires("30 1 * * *", at(2025, 10, 25, 0, 0), 3)
    assert [g.isoformat() for g in got] == [
        "2025-10-25T01:30:00+01:00",
        "2025-10-26T01:30:00+01:00",  # the first 01:30 only, not the repeated one
        "2025-10-27T01:30:00+00:00",
    ]
    hourly = fires("30 * * * *", at(2025, 10, 26, 0, 0), 3)
    assert [h.isoformat() for h in hourly] == [
        "2025-10-26T00:30:00+01:00",
        "2025-10-26T01:30:00+01:00",
        "2025-10-26T02:30:00+00:00",
    ]


def test_weekly_digest_keeps_its_wall_clock_time_across_the_change() -> None:
    got = fires("0 9 * * mon", at(2025, 3, 20, 0, 0), 2)
    assert [g.isoformat() for g in got] == [
        "2025-03-24T09:00:00+00:00",
        "2025-03-31T09:00:00+01:00",
    ]


def test_midnight_on_the_first_survives_the_spring_change() -> None:
    # APScheduler 3.11.3's CronTrigger returns 1 May here (it skips 1 April); ours does not.
    assert [f.isoformat() for f in fires("0 0 1 * *", at(2025, 3, 27), 2)] == [
        "2025-04-01T00:00:00+01:00",
        "2025-05-01T00:00:00+01:00",
    ]
    assert [f.isoformat() for f in fires("0 0 1 feb-apr *", at(2025, 1, 5), 3)] == [
        "2025-02-01T00:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
        "2025-04-01T00:00:00+01:00",
    ]


@pytest.mark.parametrize(
    ("nickname", "same_as"),
    [
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@Annually", "0 0 1 1 *"),
    ],
)
def test_cron_nicknames(nickname: str, same_as: str) -> None:
    start = at(2026, 3, 20)
    assert fires(nickname, start, 3) == fires(same_as, start, 3)


def test_an_unknown_nickname_is_invalid() -> None:
    with pytest.raises(ValueError, match="has 1 fields"):
        parse_crontab("@reboot")


def test_latest_fire_coalesces_missed_fires_within_the_grace() -> None:
    hourly = CrontabSchedule(parse_crontab("0 * * * *"), LONDON)
    now = at(2025, 6, 2, 12, 30)
    # Missed since 08:00, grace 2h: the latest due fire, 12:00, runs once.
    assert latest_fire(hourly, at(2025, 6, 2, 8), now, timedelta(hours=2)) == at(2025, 6, 2, 12)
    # Nothing due yet.
    assert latest_fire(hourly, at(2025, 6, 2, 13), now, timedelta(hours=2)) is None


def test_the_crontab_reader_loads_no_scheduler_library() -> None:
    code = "import sys, digest.crontab; print('apscheduler' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
