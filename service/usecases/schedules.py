"""Timer start events: a process that starts on a timer opens its cases when the timer fires.

Deploying a version with a timer start event (re)plans the process's schedule; a version without
one removes it. The worker claims a due schedule once across workers (a row lock that others skip),
moves it to its next firing in the same transaction, and leaves a start job (bulk.py) that opens one
case per cadre the process's `cadreflow:startFor` selects (default: every cadre holding a post),
never a second open case of that process for a cadre. A schedule that missed several firings (no worker
ran) fires only the newest one due and logs the older ones as skipped (`_catch_up`).
"""

from __future__ import annotations

import logging
from datetime import datetime, time, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import ProcessVersion, ScheduledStart, StartJob, utcnow
from workflows.engine import add_duration, fixed_length

from . import bulk, queries
from .context import SYSTEM, Services
from .steps import run_engine

log = logging.getLogger(__name__)


def plan(services: Services, session: Session, version: ProcessVersion) -> None:
    """Schedule (or unschedule) the timer start of a newly deployed version."""
    definition = services.definitions.get(version)
    row = session.get(ScheduledStart, version.process_key)
    if definition.start_timer is None:
        if row is not None:
            session.delete(row)
        return
    if definition.start_for:  # failing on one cadre, it would open no case for anyone at every firing
        run_engine(lambda: services.runner.select(definition.start_for or "", bulk.sample_scopes()))
    schedule = run_engine(lambda: services.runner.timer_schedule(definition))
    if schedule is None:
        return
    row = row or ScheduledStart(process_key=version.process_key)
    row.next_due = datetime.fromisoformat(schedule.first)
    row.interval, row.remaining = schedule.interval, schedule.repetitions
    _skip_fired(row, services.zone)
    session.add(row)


def _skip_fired(row: ScheduledStart, zone: tzinfo) -> None:
    """A new version goes on from the process's last firing: those due by then have fired already (a label fixed
    in February must not fire the New Year's start again, opening a second case for every cadre)."""
    if row.last_fired_at is not None:
        _leap(row, row.last_fired_at, zone)
    while row.last_fired_at is not None and row.next_due is not None and row.next_due <= row.last_fired_at:
        row.next_due = _next(row, zone)


def fire_due(services: Services, now: datetime | None = None) -> int:
    """Fire every due timer start once, leaving a start job each; returns how many fired."""
    now = now or utcnow()
    with services.db.unit_of_work(write=False) as session:
        due = list(session.scalars(select(ScheduledStart.process_key).where(ScheduledStart.next_due <= now)))
    return sum(_fire(services, key, now) for key in due)


def _fire(services: Services, process_key: str, now: datetime) -> int:
    with services.db.unit_of_work() as session:
        row = session.scalar(select(ScheduledStart).where(
            ScheduledStart.process_key == process_key, ScheduledStart.next_due <= now)
            .with_for_update(skip_locked=True))
        version = queries.newest_version(session, process_key)
        if row is None or row.next_due is None or version is None:
            return 0  # another worker fired it meanwhile
        definition = services.definitions.get(version)
        _catch_up(row, now, services.zone)
        fired = row.next_due.astimezone(services.zone)
        session.add(StartJob(process_key=process_key, data=_trigger_data(definition.start_form, fired),
                             selector=definition.start_for, dedupe="open", created_by=SYSTEM.username))
        row.last_fired_at, row.next_due = now, _next(row, services.zone)
        return 1


def _catch_up(row: ScheduledStart, now: datetime, zone: tzinfo) -> None:
    """Move a schedule that missed firings (no worker ran for a while) on to the newest one due, skipping the older
    ones: after years down, a yearly 述职述廉 must open this year's cases, not the oldest missed year's (and then,
    each cadre's case being open, none of later years). The skipped firings are logged for the admin."""
    skipped: list[datetime] = []  # the first MAX_SKIPPED_SHOWN, for the log
    count = 0
    while row.next_due is not None:
        if len(skipped) == MAX_SKIPPED_SHOWN:
            count += _leap(row, now, zone)
        remaining = row.remaining
        following = _next(row, zone)
        if following is None or following > now:
            row.remaining = remaining  # not taken: this one fires
            break
        skipped += [row.next_due][:MAX_SKIPPED_SHOWN - len(skipped)]
        count += 1
        row.next_due = following
    if count:
        shown = ", ".join(_local(moment, zone) for moment in skipped)
        more = f" and {count - len(skipped)} more" if count > len(skipped) else ""
        log.warning("timer start of %s: %d missed firing(s) skipped (%s%s), no worker ran then; only the newest "
                    "due, %s, fires", row.process_key, count, shown, more, _local(row.next_due, zone))


def _leap(row: ScheduledStart, until: datetime, zone: tzinfo) -> int:
    """Move a schedule whose interval has a fixed length (no years or months) on by all but one of its firings
    due by `until` at once, and say how many: one at a time, a cycle of hours begun decades back (a designer may
    date it to the year 1) took a computed firing each, 17 million, under the schedule's lock."""
    if row.interval is None or row.next_due is None:
        return 0
    try:
        length = fixed_length(row.interval)
    except ValueError:
        return 0
    if not length:
        return 0
    steps = int((until - row.next_due) / length) - 1
    if row.remaining is not None:
        steps = min(steps, row.remaining - 1)
    if steps <= 0:
        return 0
    try:
        row.next_due = row.next_due.astimezone(zone) + steps * length
    except OverflowError:
        return 0
    if row.remaining is not None:
        row.remaining -= steps
    return steps


MAX_SKIPPED_SHOWN = 10  # an hourly cycle down for a month skipped hundreds: the log names the first ones


def _local(moment: datetime | None, zone: tzinfo) -> str:
    """A firing in the county's calendar: its day alone at midnight (a yearly or monthly cycle), else with its time."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return local.date().isoformat() if local.time() == time() else local.strftime("%Y-%m-%d %H:%M")


def _trigger_data(start_form: dict[str, Any], fired: datetime) -> dict[str, Any]:
    """What a timer-started case knows of its firing (`fired`: in the county's zone, so a firing at its New Year's
    midnight is in the new year), as far as its start form takes it (e.g. `year`). Deploy refuses a timer start whose
    form requires more than these and the cadre (workflows.engine.timing.TIMER_START_DATA)."""
    facts = {"year": fired.year, "fired_on": fired.date().isoformat()}
    return {name: value for name, value in facts.items() if name in start_form.get("properties", {})}


def _next(row: ScheduledStart, zone: tzinfo) -> datetime | None:
    """The firing after this one, or None when the schedule is over. The interval is added on the county's
    calendar: a month after midnight of 1 February there is 1 March, where in UTC (31 January, 16:00) it would be
    January's 31 days later, the 4th."""
    if row.interval is None or (row.remaining is not None and row.remaining <= 0) or row.next_due is None:
        return None
    if row.remaining is not None:
        row.remaining -= 1
    try:
        return add_duration(row.next_due.astimezone(zone), row.interval)
    except (OverflowError, ValueError):  # past the year 9999, or an interval stored before deploy refused it
        log.warning("timer start of %s ends: its next firing cannot be computed", row.process_key)
        return None
