"""ISO 8601 timer values, read the way SpiffWorkflow reads them (calendar-aware: P1Y is a year)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .types import TimerSchedule

# What a case a timer start opens is given: its cadre, and the firing's year and day (service/usecases/schedules.py
# gives those its start form declares). A start form requiring anything else would refuse every firing's cases.
TIMER_START_DATA = frozenset({"cadre_id", "year", "fired_on"})


def schedule_of(kind: str, value: str, now: datetime) -> TimerSchedule:
    """When a timer start of this kind ("date", "duration", "cycle") and value first fires, and how often."""
    if kind == "cycle":  # R[n]/start/duration: the interval kept as ISO text
        cycles, start, _ = TimerEventDefinition.parse_iso_recurring_interval(value)
        interval = value.rsplit("/", 1)[-1]
        _require_sane_interval(start, interval)
        return TimerSchedule(start.astimezone(UTC).isoformat(), interval, None if cycles < 0 else max(cycles - 1, 0))
    if kind == "duration":
        return TimerSchedule(add_duration(now, value).isoformat())
    return TimerSchedule(TimerEventDefinition.get_datetime(value).astimezone(UTC).isoformat())


MIN_CYCLE = timedelta(hours=1)  # each firing opens a case per cadre: a cycle of seconds would flood the county


def _require_sane_interval(start: datetime, interval: str) -> None:
    """Refuse at deploy a cycle the scheduler could not follow: shorter than MIN_CYCLE (PT0S fires at every
    poll for ever), or so long that the next firing is past the year 9999 (it would fail at every poll)."""
    if add_duration(start, interval) - start < MIN_CYCLE:
        raise ValueError(f"a timer cycle must be at least {MIN_CYCLE} (定时周期不得短于一小时)")


MAX_MONTHS = 12 * 9999  # more, and any day plus the duration is past the year 9999


def add_duration(moment: datetime, duration: str) -> datetime:
    """`moment` plus an ISO 8601 duration; ValueError when the duration does not parse or its years and months
    pass the calendar (SpiffWorkflow counts them a month at a time: P999999999Y took minutes), OverflowError when
    the sum does."""
    parsed = TimerEventDefinition.parse_iso_duration(duration)
    if parsed.get("years", 0) * 12 + parsed.get("months", 0) > MAX_MONTHS:
        raise ValueError(f"{duration} runs past the year 9999")
    later: datetime = moment + TimerEventDefinition.get_timedelta_from_start(parsed, moment)
    return later


def reads_as_duration(value: str) -> None:
    """Raise unless `value` is a duration a case could wait: one that parses and can be added to today."""
    add_duration(datetime.now(UTC), value)


def fixed_length(duration: str) -> timedelta | None:
    """The length of an ISO 8601 duration without years or months (which a calendar lengthens or shortens), or
    None; ValueError when it does not parse."""
    try:
        parsed = TimerEventDefinition.parse_iso_duration(duration)
    except Exception as exc:  # SpiffWorkflow raises a bare Exception on a bad value
        raise ValueError(str(exc)) from None
    if parsed.get("years") or parsed.get("months"):
        return None
    return timedelta(**{unit: amount for unit, amount in parsed.items() if unit not in ("years", "months")})
