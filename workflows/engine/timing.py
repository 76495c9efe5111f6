"""ISO 8601 timer values, read the way SpiffWorkflow reads them (calendar-aware: P1Y is a year)."""

from __future__ import annotations

from datetime import UTC, datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .types import TimerSchedule


def schedule_of(kind: str, value: str, now: datetime) -> TimerSchedule:
    """When a timer start of this kind ("date", "duration", "cycle") and value first fires, and how often."""
    if kind == "cycle":  # R[n]/start/duration: the interval kept as ISO text
        cycles, start, _ = TimerEventDefinition.parse_iso_recurring_interval(value)
        return TimerSchedule(start.astimezone(UTC).isoformat(), value.rsplit("/", 1)[-1],
                             None if cycles < 0 else cycles - 1)
    if kind == "duration":
        return TimerSchedule(add_duration(now, value).isoformat())
    return TimerSchedule(TimerEventDefinition.get_datetime(value).astimezone(UTC).isoformat())


def add_duration(moment: datetime, duration: str) -> datetime:
    """`moment` plus an ISO 8601 duration; ValueError when the duration does not parse."""
    parsed = TimerEventDefinition.parse_iso_duration(duration)
    later: datetime = moment + TimerEventDefinition.get_timedelta_from_start(parsed, moment)
    return later
