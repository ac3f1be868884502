"""When the automator's full cycles run: intervals, crontab fields and DST (pure: no service runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from automator.daemon.schedule import Schedule, cron_weekdays
from automator.errors import ConfigError


def test_interval_runs_at_start_then_on_a_fixed_grid() -> None:
    schedule = Schedule.parse(60, None, "UTC")
    assert schedule.at_start
    start = schedule.triggers[0].start_date
    assert schedule.next_after(start) == start
    assert schedule.next_after(start + timedelta(seconds=1)) == start + timedelta(seconds=60)
    # a cycle that ran 150 s skips the missed slots instead of starting twice in a row
    assert schedule.next_after(start + timedelta(seconds=150)) == start + timedelta(seconds=180)


def test_cron_schedule_follows_its_time_zone() -> None:
    schedule = Schedule.parse(300, "0 9 * * 1-5", "Europe/Berlin")
    assert not schedule.at_start
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    nxt = schedule.next_after(saturday)
    assert nxt is not None
    assert nxt.astimezone(UTC) == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 CET


def test_an_interval_grid_starts_where_it_is_told() -> None:
    # a service on a clock of its own (a test's) anchors the grid on that clock, not the machine's
    start = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    schedule = Schedule.parse(60, None, "UTC", now=start)
    assert schedule.next_after(start) == start
    assert schedule.next_after(start + timedelta(seconds=61)) == start + timedelta(seconds=120)


@pytest.mark.parametrize(
    ("cron", "tz", "after", "expected"),
    [
        # APScheduler 3's own zone handling skips the day after a spring DST change
        ("0 0 * * *", "America/New_York", datetime(2026, 3, 8, 0, 0, 30), datetime(2026, 3, 9, 0, 0)),
        ("0 0 * * *", "Europe/Berlin", datetime(2026, 3, 29, 0, 0, 30), datetime(2026, 3, 30, 0, 0)),
        ("0 0 * * 1", "Europe/Berlin", datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 30, 0, 0)),
        # a wall time the change skips runs at the same offset after it
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 29, 3, 30)),
        # the repeated hour in autumn runs once
        ("30 1 * * *", "Europe/Berlin", datetime(2026, 10, 25, 1, 40), datetime(2026, 10, 26, 1, 30)),
        # crontab: a restricted day of month and day of week are alternatives
        ("0 0 1 * 1", "UTC", datetime(2026, 11, 22, 12, 0), datetime(2026, 11, 23, 0, 0)),
        ("0 0 1 * 1", "UTC", datetime(2026, 11, 24, 12, 0), datetime(2026, 11, 30, 0, 0)),
        ("0 0 1 * *", "UTC", datetime(2026, 11, 24, 12, 0), datetime(2026, 12, 1, 0, 0)),
    ],
)
def test_cron_schedules_mean_what_crontab_means_across_dst(
    cron: str, tz: str, after: datetime, expected: datetime
) -> None:
    zone = ZoneInfo(tz)
    nxt = Schedule.parse(300, cron, tz).next_after(after.replace(tzinfo=zone).astimezone(UTC))
    assert nxt is not None
    assert nxt.astimezone(zone).replace(tzinfo=None) == expected


def test_a_wildcard_hour_runs_in_both_passes_of_the_repeated_autumn_hour() -> None:
    zone = ZoneInfo("Europe/Berlin")
    schedule = Schedule.parse(300, "30 * * * *", "Europe/Berlin")

    def after(hour: int, minute: int, fold: int = 0) -> datetime:
        at = datetime(2026, 10, 25, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)
        nxt = schedule.next_after(at)
        assert nxt is not None
        return nxt

    first = after(1, 40)  # CEST
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = after(2, 40)  # still the first pass
    assert second == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second pass
    assert after(2, 40, fold=1) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)  # 03:30 CET
    # spring: the skipped hour is simply not there
    spring = Schedule.parse(300, "30 * * * *", "Europe/Berlin")
    at = datetime(2026, 3, 29, 1, 40, tzinfo=zone).astimezone(UTC)
    assert spring.next_after(at) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    # ...and nothing runs at an hour the schedule does not name, before or after the change
    even = Schedule.parse(300, "30 */2 * * *", "Europe/Berlin")
    at = datetime(2026, 3, 29, 0, 40, tzinfo=zone).astimezone(UTC)
    assert even.next_after(at) == datetime(2026, 3, 29, 2, 30, tzinfo=UTC)  # 04:30 CEST
    havana = ZoneInfo("America/Havana")  # its spring change is at midnight, into Sunday
    sunday = Schedule.parse(300, "30 * * * 0", "America/Havana")
    at = datetime(2026, 3, 7, 23, 0, tzinfo=havana).astimezone(UTC)  # Saturday evening
    nxt = sunday.next_after(at)
    assert nxt is not None
    assert nxt.astimezone(havana).weekday() == 6  # a Sunday, never Saturday 23:30


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("61 * * * *", "UTC", "--schedule '61 * * * *'"),
        ("* * *", "UTC", "3 fields; expected 5 crontab fields"),
        ("0 9 * * *", "Mars/Olympus", "--timezone 'Mars/Olympus'"),
        ("0 0 30 2 *", "UTC", "never fires"),
    ],
)
def test_bad_schedules_are_config_errors(cron: str, tz: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        Schedule.parse(300, cron, tz)


# --------------------------------------------------------------------------- webhooks -> cycles


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "fri,sat,sun"),
        ("fri-sun", "fri,sat,sun"),
        ("0-6", "mon,tue,wed,thu,fri,sat,sun"),
        ("*/2", "tue,thu,sat,sun"),
        ("1/2", "mon,wed,fri"),
        ("mon,wed", "mon,wed"),
    ],
)
def test_crontab_weekdays_mean_what_crontab_means(field: str, days: str) -> None:
    # APScheduler numbers days from Monday = 0; crontab from Sunday = 0
    assert cron_weekdays(field) == days


@pytest.mark.parametrize("field", ["8", "mon-", "5-1", "*/0", "funday"])
def test_bad_crontab_weekdays(field: str) -> None:
    with pytest.raises(ValueError):
        cron_weekdays(field)
