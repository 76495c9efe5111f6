"""Early warning on 苗头性问题 (PROCESSES.md §10, seed 三(五)): signals, the `early_warning` table, the scan.

Signals are computed in SQL for every cadre at once (one statement of grouped subqueries). The level comes
from the DMN table `early_warning` (bpmn/early_warning.dmn, deployed with the process `early_warning`,
editable like the other tables), evaluated through the executor once per distinct combination of signals,
never per cadre. The scan keeps the watch list (`watchlist`: every cadre whose level is not `none`) and
opens a 提醒谈话 (`admonishment`, `trigger` `early_warning`) for an `alert` unless one is already open. In the
same transaction it keeps the list's history (`watch_counts`): per unit, how many cadres it put at each level
that day, counted in SQL; the watch list only says where things stand now.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, case, delete, func, insert, literal, not_, select, true, update
from sqlalchemy.orm import Session

from service.db.models import (
    Assessment,
    Cadre,
    Case,
    Disclosure,
    DisclosureRating,
    PersonalReport,
    ScheduledRun,
    WatchCount,
    WatchEntry,
)
from service.db.uow import rows_changed
from service.errors import Conflict, ServiceError, WrittenMeanwhile

from . import policy
from .context import SYSTEM, Actor, Services
from .queries import check_period, findings_made_at, newest_version, unfinished
from .rotation import full_years
from .stepper import start_batch
from .steps import run_engine

PROCESS = "early_warning"  # the process that carries the decision table
ADMONISHMENT = "admonishment"
TRIGGER = "early_warning"
LEVELS = ("alert", "watch", "none")  # highest first
SIGNALS = ("reports_12m", "late_reports_12m", "latest_grade", "dissatisfied_share", "years_in_post",
           "audit_findings_3y")
FINDINGS = ("minor", "major")
BATCH = 200  # signal combinations per executor round trip
SCAN_NAME = "early_warning_scan"
_DAY = timedelta(days=1)


def months_before(day: date, months: int) -> date:
    """The same day `months` earlier (the month's last day when it has fewer days)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _start_of(day: date, zone: tzinfo) -> datetime:
    """The moment a county day begins (its midnight in TIMEZONE), for comparing with stored UTC times."""
    return datetime.combine(day, time.min, zone).astimezone(UTC)


def signal_rows(session: Session, on: date, zone: tzinfo) -> list[tuple[str, dict[str, Any]]]:
    """Every cadre's id with its signals as of the county day `on` (days begin at midnight in `zone`), in one
    statement (grouped subqueries, outer-joined; columns only, so no cadre object and none of its records is loaded)."""
    year_ago, three_years_ago = months_before(on, 12), months_before(on, 36)
    reports = (select(Case.cadre_id.label("cadre_id"), func.count().label("n"))
               .where(Case.process_key == "public_report", Case.cadre_id.is_not(None), Case.status != "cancelled",
                      Case.created_at >= _start_of(year_ago, zone), Case.created_at < _start_of(on + _DAY, zone))
               .group_by(Case.cadre_id).subquery())
    late = (select(PersonalReport.cadre_id.label("cadre_id"), func.count().label("n"))
            .where(PersonalReport.late | PersonalReport.found_unreported,
                   PersonalReport.reported_on >= year_ago, PersonalReport.reported_on <= on)
            .group_by(PersonalReport.cadre_id).subquery())
    audits = (select(Case.cadre_id.label("cadre_id"), func.count().label("n"))
              .where(Case.process_key == "departure_audit", Case.data["findings"].as_string().in_(FINDINGS),
                     Case.status != "cancelled", findings_made_at() >= _start_of(three_years_ago, zone))
              .group_by(Case.cadre_id).subquery())
    grade = _latest(session, Assessment, Assessment.year)
    review = _latest(session, Disclosure, Disclosure.year, Disclosure.result.is_not(None))
    tally = (select(DisclosureRating.disclosure_id.label("disclosure_id"),
                    func.sum(case((DisclosureRating.rating == "dissatisfied", 1), else_=0)).label("dissatisfied"),
                    func.count().label("total"))
             .group_by(DisclosureRating.disclosure_id).subquery())
    statement = (
        select(Cadre.id, Cadre.post_started_on, reports.c.n, late.c.n, audits.c.n, Assessment.grade,
               tally.c.dissatisfied, tally.c.total, review.c.id)
        .outerjoin(reports, reports.c.cadre_id == Cadre.id)
        .outerjoin(late, late.c.cadre_id == Cadre.id)
        .outerjoin(audits, audits.c.cadre_id == Cadre.id)
        .outerjoin(grade, grade.c.cadre_id == Cadre.id).outerjoin(Assessment, Assessment.id == grade.c.id)
        .outerjoin(review, review.c.cadre_id == Cadre.id).outerjoin(tally, tally.c.disclosure_id == review.c.id)
        .order_by(Cadre.id))
    rows = []
    for cadre_id, started, n_reports, n_late, n_audits, latest_grade, dissatisfied, total, review_id in (
            session.execute(statement)):
        share = round(dissatisfied / total, 3) if total else (0.0 if review_id is not None else None)
        rows.append((cadre_id, {
            "reports_12m": n_reports or 0, "late_reports_12m": n_late or 0, "latest_grade": latest_grade,
            "dissatisfied_share": share,
            "years_in_post": full_years(started, on) if started else None,
            "audit_findings_3y": n_audits or 0}))
    return rows


def _latest(session: Session, model: Any, year: Any, *where: Any) -> Any:
    """Per cadre, the id of its newest row by year (the last recorded within a year)."""
    newest = select(model.cadre_id.label("cadre_id"), func.max(year).label("year")).where(*where).group_by(
        model.cadre_id).subquery()
    return (select(model.cadre_id.label("cadre_id"), func.max(model.id).label("id"))
            .join(newest, and_(model.cadre_id == newest.c.cadre_id, year == newest.c.year)).where(*where)
            .group_by(model.cadre_id).subquery())


def classify(services: Services, session: Session, signals: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The table's `{level, reason}` for each set of signals, evaluating each distinct set once."""
    version = newest_version(session, PROCESS)
    if version is None:
        raise Conflict("the early_warning decision table is not deployed (预警决策表 early_warning 未部署)")
    definition = services.definitions.get(version)
    keys = [tuple(s.get(name) for name in SIGNALS) for s in signals]
    distinct = sorted(set(keys), key=repr)
    found: dict[tuple[Any, ...], dict[str, str]] = {}
    for start in range(0, len(distinct), BATCH):
        chunk = distinct[start:start + BATCH]
        starts = [dict(zip(SIGNALS, key, strict=True)) for key in chunk]
        steps = run_engine(partial(services.runner.start_many, definition, starts, [_no_services] * len(starts)))
        for key, step in zip(chunk, steps, strict=True):
            data = run_engine(partial(_data_of, step))
            level = str(data.get("level")) if data.get("level") in LEVELS else "none"
            found[key] = {"level": level, "reason": str(data.get("reason") or "")}
    return [found[key] for key in keys]


def _data_of(step: Any) -> dict[str, Any]:
    if isinstance(step, Exception):
        raise step
    return dict(step.data)


def _no_services(name: str, _params: dict[str, Any], _data: dict[str, Any]) -> Any:
    raise Conflict(f"the early_warning process calls no service task ({name})")


def scan(services: Services, actor: Actor, on: date | None = None) -> dict[str, Any]:
    """Evaluate every cadre (discipline roles, admin); keep the watch list, open 提醒谈话 for alerts."""
    policy.require(actor, "early_warning.scan")
    with services.db.unit_of_work() as session:
        return _scan(services, session, on or services.today())


def _scan(services: Services, session: Session, on: date) -> dict[str, Any]:
    rows = signal_rows(session, on, services.zone)
    levels = classify(services, session, [signals for _, signals in rows])
    kept = {entry.cadre_id: entry for entry in session.scalars(select(WatchEntry))}
    flagged = {}
    for (cadre_id, signals), result in zip(rows, levels, strict=True):
        if result["level"] == "none":
            continue
        flagged[cadre_id] = result["level"]
        entry = kept.pop(cadre_id, None)
        if entry is None:
            session.add(WatchEntry(cadre_id=cadre_id, level=result["level"], signals=signals,
                                   reason=result["reason"], since=on, scanned_on=on))
            continue
        if entry.level != result["level"]:
            entry.since = on
        entry.level, entry.signals, entry.reason, entry.scanned_on = (result["level"], signals, result["reason"], on)
    if kept:
        session.execute(delete(WatchEntry).where(WatchEntry.cadre_id.in_(sorted(kept))))
    session.flush()
    _count_levels(session, on)
    opened = _open_talks(services, session, [cadre_id for cadre_id, level in flagged.items() if level == "alert"])
    return {"scanned": len(rows), "watch": sum(1 for v in flagged.values() if v == "watch"),
            "alert": sum(1 for v in flagged.values() if v == "alert"), "opened": opened}


def _count_levels(session: Session, on: date) -> None:
    """The day's point of the history: cadres per unit and level, grouped in SQL over the watch list just
    written (a cadre not on it is `none`, so every scanned unit has its day even when nobody is flagged).
    A second scan of the same day replaces the first's rows."""
    session.execute(delete(WatchCount).where(WatchCount.scanned_on == on))
    counted = (select(literal(on, Date), Cadre.unit, func.coalesce(WatchEntry.level, "none"), func.count())
               .select_from(Cadre).outerjoin(WatchEntry, WatchEntry.cadre_id == Cadre.id)
               .group_by(Cadre.unit, WatchEntry.level))
    session.execute(insert(WatchCount).from_select(["scanned_on", "unit", "level", "count"], counted))


def _open_talks(services: Services, session: Session, alerts: list[str]) -> list[dict[str, Any]]:
    """A 提醒谈话 for each alerted cadre without an open early-warning admonishment."""
    if not alerts:
        return []
    busy = set(session.scalars(select(Case.cadre_id).where(
        Case.process_key == ADMONISHMENT, unfinished(), Case.cadre_id.in_(alerts),
        Case.data["trigger"].as_string() == TRIGGER)))
    due = [cadre_id for cadre_id in alerts if cadre_id not in busy]
    if not due:
        return []
    reasons = {row.cadre_id: row.reason for row in session.execute(
        select(WatchEntry.cadre_id, WatchEntry.reason).where(WatchEntry.cadre_id.in_(due)))}
    summary = "苗头性问题预警（提醒谈话）：{}"
    items = [(cadre_id, {"trigger": TRIGGER, "summary": summary.format(reasons.get(cadre_id) or "预警")})
             for cadre_id in due]
    opened: list[dict[str, Any]] = []
    for (cadre_id, _), result in zip(items, start_batch(services, session, SYSTEM, ADMONISHMENT, items), strict=True):
        if isinstance(result, ServiceError):
            opened.append({"cadre_id": cadre_id, "error": result.message})
            continue
        session.execute(update(WatchEntry).where(WatchEntry.cadre_id == cadre_id).values(case_id=result.id))
        opened.append({"cadre_id": cadre_id, "case_id": result.id})
    return opened


def run_daily_scan(services: Services, today: date | None = None) -> dict[str, Any] | None:
    """Run the scan if no worker has run it today (claimed atomically with the scan); None when done."""
    today = today or services.today()
    try:
        with services.db.unit_of_work() as session:
            if session.get(ScheduledRun, SCAN_NAME) is None:
                session.add(ScheduledRun(name=SCAN_NAME, last_run_on=date.min))
    except WrittenMeanwhile:
        pass  # another worker created the marker at the same moment
    with services.db.unit_of_work() as session:
        claimed = rows_changed(session, update(ScheduledRun).where(
            ScheduledRun.name == SCAN_NAME, ScheduledRun.last_run_on < today).values(last_run_on=today))
        if claimed != 1:
            return None
        return _scan(services, session, today)


def watchlist(services: Services, actor: Actor) -> dict[str, Any]:
    """Every cadre whose level is not `none` and the caller may read, highest level first, then by unit."""
    policy.require(actor, "watchlist.read")
    rank = case({level: index for index, level in enumerate(LEVELS)}, value=WatchEntry.level)
    statement = (select(WatchEntry, Cadre).join(Cadre, Cadre.id == WatchEntry.cadre_id)
                 .where(policy.cadre_filter(actor)).order_by(rank, Cadre.unit, Cadre.id))
    with services.db.unit_of_work(write=False) as session:
        rows = list(session.execute(statement))
        readable = policy.readable_case_ids(session, actor, [entry.case_id for entry, _ in rows])
        items = [{"cadre_id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post,
                  "level": entry.level, "signals": entry.signals, "reason": entry.reason,
                  "since": entry.since.isoformat(), "scanned_on": entry.scanned_on.isoformat(),
                  "case_id": entry.case_id if entry.case_id in readable else None} for entry, cadre in rows]
    return {"items": items}


def watch_history(services: Services, actor: Actor, since: date | None = None, until: date | None = None,
                  unit: str | None = None) -> dict[str, Any]:
    """The watch list over time: per scan day and unit, how many cadres were at each level, oldest first
    (`items`), and each day's sums over those units (`days`); on `since`..`until` and of `unit` when given.

    Counts are of cadres, so a unit is shown only if the caller may read every cadre now in it: its numbers
    then tell of no one the caller may not read. Every role that reads the watch list today reads every
    cadre, so nothing is left out for them; the rule holds should a narrower role be given `watchlist.read`."""
    policy.require(actor, "watchlist.read")
    check_period(since, until)
    unit = unit.strip() if isinstance(unit, str) and unit.strip() else None
    visible = _visible_units(actor)
    where = [visible, *([WatchCount.scanned_on >= since] if since else []),
             *([WatchCount.scanned_on <= until] if until else []), *([WatchCount.unit == unit] if unit else [])]
    rank = case({level: index for index, level in enumerate(LEVELS)}, value=WatchCount.level)
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(select(WatchCount.scanned_on, WatchCount.unit, WatchCount.level, WatchCount.count)
                               .where(*where).order_by(WatchCount.scanned_on, WatchCount.unit, rank)).all()
        units = list(session.scalars(select(WatchCount.unit).where(visible).distinct().order_by(WatchCount.unit)))
    items = [{"scanned_on": day.isoformat(), "unit": name, "level": level, "count": count}
             for day, name, level, count in rows]
    return {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None,
            "unit": unit, "units": units, "items": items, "days": _days(items)}


def _visible_units(actor: Actor) -> ColumnElement[bool]:
    """The history's units the caller may see: those whose every current cadre it may read (and one at least)."""
    if policy.reads_every_cadre(actor):
        return true()
    readable = policy.cadre_filter(actor)
    return and_(WatchCount.unit.in_(select(Cadre.unit).where(readable)),
                WatchCount.unit.not_in(select(Cadre.unit).where(not_(readable))))


def _days(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scan day's counts summed over the units of `items` (what a chart of all units draws)."""
    days: dict[str, dict[str, Any]] = {}
    for item in items:
        day = days.setdefault(item["scanned_on"], {"scanned_on": item["scanned_on"], **dict.fromkeys(LEVELS, 0)})
        day[item["level"]] = day.get(item["level"], 0) + item["count"]
    return list(days.values())
