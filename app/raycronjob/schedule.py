"""A RayCronJob's schedule: KubeRay's dialect (robfig/cron ``ParseStandard``) read with croniter.

Five fields (minute, hour, day of month, month, day of week) with names, ranges, steps and
``?``; the ``@yearly`` ... ``@hourly`` descriptors; ``@every <Go duration>``. croniter alone
accepts more (a seconds field, ``L``, ``W``, ``#``, ``H``): those are refused here, so a schedule
metaray accepts means the same to KubeRay.

Wall-clock schedules are evaluated in the RayCronJob's ``timeZone`` (UTC when unset). Across a
daylight-saving change: a time the clock skips runs at the first instant after the gap, and a
time the clock shows twice runs once, at its first occurrence (KubeRay's robfig/cron and
croniter both run it twice).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
EVERY = "@every "
TZ_MESSAGE = "must not contain TZ or CRON_TZ: use timeZone field instead"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (lowest, highest, names) per field, as robfig/cron bounds them (day of week 0-6).
_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 6, _DAYS))
_ATOM = re.compile(r"[0-9]+|[A-Za-z]+|\*|\?")
_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip
# croniter gives up on a schedule whose next match is further away than this (Feb 30).
_SEARCH_YEARS = 8


class ScheduleError(ValueError):
    """The schedule or time zone cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Every:
    """``@every <duration>``: ticks at the anchor plus whole multiples of ``seconds``."""

    seconds: int

    def latest(self, anchor: datetime, now: datetime) -> datetime | None:
        """The newest tick in (anchor, now], or None."""
        if now <= anchor:
            return None
        steps = math.floor((now - anchor).total_seconds() / self.seconds)
        return anchor + timedelta(seconds=steps * self.seconds) if steps >= 1 else None

    def following(self, anchor: datetime, moment: datetime) -> datetime | None:
        """The first tick after ``moment``."""
        steps = max(1, math.floor((moment - anchor).total_seconds() / self.seconds) + 1)
        return anchor + timedelta(seconds=steps * self.seconds)

    def is_tick(self, anchor: datetime, moment: datetime) -> bool:
        offset = (moment - anchor).total_seconds()
        return offset > 0 and offset % self.seconds == 0


@dataclass(frozen=True, slots=True)
class Cron:
    """A five-field expression, evaluated on the wall clock of ``zone``."""

    expression: str
    zone: tzinfo

    def latest(self, anchor: datetime, now: datetime) -> datetime | None:
        """The newest tick in (anchor, now], or None."""
        moment = now + timedelta(seconds=1)  # croniter looks strictly before: now counts
        while True:
            tick = self._step(moment, forward=False)
            if tick is None or tick <= anchor:
                return None
            if self._first_of_its_wall_time(tick):
                return tick
            moment = tick

    def following(self, anchor: datetime, moment: datetime) -> datetime | None:
        """The first tick after ``moment`` (the anchor plays no part in a cron schedule)."""
        while True:
            tick = self._step(moment, forward=True)
            if tick is None or self._first_of_its_wall_time(tick):
                return tick
            moment = tick

    def is_tick(self, anchor: datetime, moment: datetime) -> bool:
        return self.following(anchor, moment - timedelta(seconds=1)) == moment

    def _step(self, moment: datetime, forward: bool) -> datetime | None:
        local = moment.astimezone(self.zone)
        if forward:
            # croniter counts from the start of the minute; ticks are whole minutes.
            local = local.replace(second=0, microsecond=0)
        try:
            found = croniter(self.expression, local, max_years_between_matches=_SEARCH_YEARS)
            tick = found.get_next(datetime) if forward else found.get_prev(datetime)
        except (CroniterBadDateError, OverflowError, ValueError):
            return None
        assert isinstance(tick, datetime)
        return tick.astimezone(UTC)

    def _first_of_its_wall_time(self, tick: datetime) -> bool:
        """False for the second showing of a wall-clock time the clock turned back past."""
        local = tick.astimezone(self.zone)
        if local.fold == 0:
            return True
        return local.replace(fold=0).utcoffset() == local.utcoffset()


Schedule = Every | Cron


def parse(schedule: str, zone: str | None) -> Schedule:
    """The schedule, or ``ScheduleError`` naming the problem."""
    if "TZ" in schedule:
        raise ScheduleError(TZ_MESSAGE)
    text = schedule.strip()
    if text.startswith(EVERY):
        return Every(_go_duration(text[len(EVERY) :].strip()))
    expression = DESCRIPTORS.get(text.lower(), text) if text.startswith("@") else text
    if expression.startswith("@"):
        raise ScheduleError(f"unknown descriptor {text!r}")
    _check_fields(expression)
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError) as error:
        raise ScheduleError(f"not a cron schedule: {error}") from None
    return Cron(expression, time_zone(zone))


def time_zone(name: str | None) -> tzinfo:
    """An IANA zone (from the tzdata package where the OS has none); UTC when unset."""
    if name is None:
        return UTC
    if not name or name.startswith(("/", ".")) or ".." in name or "\0" in name:
        raise ScheduleError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def _go_duration(text: str) -> int:
    """A Go duration (``90s``, ``1h30m``, ``1.5h``) in whole seconds, at least one."""
    parts = _GO_DURATION.findall(text)
    if not text or "".join(f"{n}{u}" for n, u in parts) != text:
        raise ScheduleError(f"@every needs a duration such as 90s or 1h30m, not {text!r}")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds < 1:
        raise ScheduleError("@every needs a duration of at least 1s")
    if seconds > 100 * 366 * 86400:
        raise ScheduleError("@every needs a duration of at most 100 years")
    return int(seconds)  # robfig/cron drops the fraction of a second


def _check_fields(expression: str) -> None:
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise ScheduleError(
            f"needs 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}"
        )
    for text, (low, high, names) in zip(fields, _FIELDS, strict=True):
        for part in text.split(","):
            _check_part(part, text, low, high, names)


def _check_part(part: str, field: str, low: int, high: int, names: tuple[str, ...]) -> None:
    span, _, step = part.partition("/")
    if step and not (step.isdigit() and int(step) >= 1):
        raise ScheduleError(f"{field!r}: a step must be a positive number")
    bounds = span.split("-")
    if len(bounds) > 2 or not all(_ATOM.fullmatch(b) for b in bounds):
        raise ScheduleError(f"{field!r}: {part!r} is not a value, range or step")
    for bound in bounds:
        if bound in ("*", "?"):
            if len(bounds) > 1:
                raise ScheduleError(f"{field!r}: {part!r} is not a range")
        elif bound.isdigit():
            if not low <= int(bound) <= high:
                raise ScheduleError(f"{field!r}: {bound} is outside {low}-{high}")
        elif bound.upper() not in names:
            raise ScheduleError(f"{field!r}: {bound!r} is not understood here")
