"""When the automator's full cycles run: an interval from start-up, or a crontab in a time zone.

Pure: :meth:`Schedule.next_after` maps an instant to the next fire time, so the service (and its
tests) can ask it about any instant on any clock. APScheduler's triggers do the field
arithmetic; what is written here is what crontab means and APScheduler 3 does not do: Sunday
as day 0 (:func:`cron_weekdays`), day of month and day of week as alternatives, and the days
of a DST change (see :class:`Schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from automator.errors import ConfigError

__all__ = ["Schedule", "cron_weekdays"]


@dataclass(frozen=True)
class Schedule:
    """When full cycles run: every ``interval`` seconds from start-up, or on a crontab expression.

    Cron fields are matched on the wall clock of ``zone`` by APScheduler's field arithmetic in
    UTC, where no day is 23 or 25 hours long, and the wall time found is then placed in the
    zone. (APScheduler 3's own zone handling skips a day after a spring DST change.) As in
    crontab, a restricted day of month and day of week are alternatives, not both required
    (a field starting with ``*`` restricts nothing), and a wall time that a DST change skips
    runs at the same offset after the change. As in Vixie cron, a schedule whose hour is a
    wildcard runs in both passes of the autumn's repeated hour and skips the wall times the
    spring change removes; one at a fixed hour runs once, and in spring at the same offset after.
    """

    triggers: tuple[IntervalTrigger | CronTrigger, ...]
    zone: ZoneInfo
    text: str
    at_start: bool
    every_hour: bool = False  # the hour field is a wildcard: the autumn's repeated hour runs twice

    @classmethod
    def parse(cls, interval: float, cron: str | None, tz: str, *, now: datetime | None = None) -> Schedule:
        """The schedule of ``--interval``/``--schedule``/``--timezone``; ``now`` (aware, default the
        wall clock) is where an interval's grid starts and where a crontab must fire after."""
        now = datetime.now(UTC) if now is None else now
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"--timezone {tz!r}: not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
        if cron:
            try:
                fields = cron.split()
                if len(fields) != 5:
                    raise ValueError(f"{len(fields)} fields")
                minute, hour, day, month, weekday = fields
                day = "*" if day == "?" else day
                days = [(day, "*"), ("*", cron_weekdays(weekday))]
                if day.startswith("*") or weekday.startswith("*") or weekday == "?":
                    days = [(day, cron_weekdays(weekday))]  # as cron does: a field from "*" is not a restriction
                triggers = tuple(
                    CronTrigger(minute=minute, hour=hour, day=d, month=month, day_of_week=w, timezone=UTC)
                    for d, w in days
                )
            except ValueError as exc:
                raise ConfigError(
                    f"--schedule {cron!r}: {exc}; expected 5 crontab fields, e.g. '*/10 8-18 * * 1-5'"
                ) from None
            schedule = cls(triggers, zone, f"cron {cron!r} ({tz})", at_start=False, every_hour=hour.startswith("*"))
            if schedule.next_after(now) is None:
                raise ConfigError(f"--schedule {cron!r} never fires")
            return schedule
        if interval <= 0:
            raise ConfigError("--interval must be positive")
        trigger = IntervalTrigger(seconds=interval, start_date=now, timezone=UTC)
        return cls((trigger,), zone, f"every {interval:g}s", at_start=True)

    def next_after(self, now: datetime) -> datetime | None:
        """The first fire time at or after ``now`` (aware): a cycle longer than the interval
        skips a slot rather than starting the next one at once."""
        if isinstance(self.triggers[0], IntervalTrigger):
            fire: datetime | None = self.triggers[0].get_next_fire_time(None, now)
            return fire
        # the wall clock, written as if it were UTC, is what the fields are matched against
        wall = now.astimezone(self.zone).replace(tzinfo=UTC)
        if self.every_hour:
            return self._next_on_the_timeline(wall, now)
        fires: list[datetime] = [f for f in (t.get_next_fire_time(None, wall) for t in self.triggers) if f is not None]
        if not fires:
            return None
        local = min(fires).replace(tzinfo=self.zone)  # fold=0: the first of a repeated hour...
        for candidate in (local, local.replace(fold=1)):  # ...unless that one has passed already
            if candidate.astimezone(UTC) >= now:
                return candidate.astimezone(UTC)
        return now

    def _next_on_the_timeline(self, wall: datetime, now: datetime) -> datetime | None:
        """For a wildcard hour, as cron runs it: each matching wall time in each pass of a
        repeated hour. Wall times from two hours back are tried (that hour may be passing a
        second time), up to the first instant after ``now`` that no later wall time can beat."""
        best: datetime | None = None
        cursor = wall - timedelta(hours=2)
        for _ in range(2000):
            fires = [f for f in (t.get_next_fire_time(None, cursor) for t in self.triggers) if f is not None]
            if not fires:
                break
            match = min(fires)
            if best is not None and match > wall + timedelta(hours=3):
                break  # a DST shift is at most two hours: nothing later can come first
            for fold in (0, 1):
                local = match.replace(tzinfo=self.zone, fold=fold)
                instant = local.astimezone(UTC)
                if instant.astimezone(self.zone).replace(tzinfo=None) != match.replace(tzinfo=None):
                    continue  # a wall time the spring change skips: a wildcard-hour job just goes on
                if instant >= now and (best is None or instant < best):
                    best = instant
            cursor = match + timedelta(seconds=1)
        return best


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_weekdays(text: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, 1 = Monday) as APScheduler day names.

    APScheduler 3 numbers days from Monday = 0, so a crontab's ``1-5`` handed to it unchanged
    would mean Tuesday to Saturday; the field is expanded to the days it means, by name.
    """
    if text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in text.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"day-of-week step {step_text!r}")
        if base == "*":
            first, last = 0, 6
        else:
            low, dash, high = base.partition("-")
            first = _day(low)
            last = (7 if high == "sun" else _day(high)) if dash else (6 if step else first)
        if last < first:
            raise ValueError(f"day-of-week range {base!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step or 1))
    return ",".join(_DAYS[d] for d in (1, 2, 3, 4, 5, 6, 0) if d in days)


def _day(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)  # 7 stays 7 so that ranges like 5-7 run forwards
    if token in _DAYS:
        return _DAYS.index(token)
    raise ValueError(f"day of week {token!r} (0-7 or sun-sat)")
