"""The rotation scan (seed 四(三)): open a rotation review for every cadre who is due.

Leading cadres 10 years or more in the same post must rotate (`mandatory`); middle-level cadres
3 years or more should (`advised`). A cadre never gets a second review while one is open.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, ScheduledRun
from service.db.uow import rows_changed
from service.errors import WrittenMeanwhile

from . import policy, queries, stepper  # the module, not its names: stepper's start rules read this module
from .context import SYSTEM, Actor, Services

RULES = {"leading": (10, "mandatory"), "middle": (3, "advised")}
PROCESS = "rotation_review"


def full_years(since: date, on: date) -> int:
    """Whole years from `since` to `on` (the anniversary day counts as a full year)."""
    years = on.year - since.year
    if (on.month, on.day) < (since.month, since.day):
        years -= 1
    return years


def due_rule(cadre: Cadre, on: date) -> tuple[str, int] | None:
    """The rule (`mandatory`, `advised`) and the full years in post by which a cadre is due on a date; None
    when no rule applies (no post, a level without a rule, fewer years than its rule asks). The scan and
    every start of a review (start_rules.py) ask this."""
    if cadre.post_level not in RULES or not cadre.post or cadre.post_started_on is None:
        return None
    threshold, rule = RULES[cadre.post_level]
    years = full_years(cadre.post_started_on, on)
    return (rule, years) if years >= threshold else None


def rotation_scan(services: Services, actor: Actor, on: date | None = None) -> list[dict[str, Any]]:
    """Open the rotation reviews that are due on a date; returns what was opened."""
    policy.require(actor, "rotation.scan")
    with services.db.unit_of_work() as session:
        return _scan(services, session, actor, on or services.today())


def _scan(services: Services, session: Session, actor: Actor, on: date) -> list[dict[str, Any]]:
    return [_open_review(services, session, actor, cadre, rule, years, on) for cadre, rule, years in _due(session, on)]


def _due(session: Session, on: date) -> list[tuple[Cadre, str, int]]:
    busy = select(Case.cadre_id).where(Case.process_key == PROCESS, queries.unfinished())
    cadres = session.scalars(select(Cadre).where(Cadre.post_level.in_(RULES), Cadre.post != "",
                                                 Cadre.post_started_on.is_not(None), Cadre.id.not_in(busy))
                             .order_by(Cadre.id))
    due = []
    for cadre in cadres:
        found = due_rule(cadre, on)
        if found is not None:
            due.append((cadre, *found))
    return due


def _open_review(services: Services, session: Session, actor: Actor, cadre: Cadre, rule: str,
                 years: int, on: date) -> dict[str, Any]:
    # The start rule (start_rules.py) takes these facts from the record again; an older deployed form requires them.
    data = {"rule": rule, "years_in_post": years, "post_level": cadre.post_level}
    case = stepper.start_in_session(services, session, actor, PROCESS, cadre.id, data, parent=None, on=on)
    return {"case_id": case.id, "cadre_id": cadre.id, "rule": rule, "years_in_post": years}


def run_daily_scan(services: Services, today: date | None = None) -> list[dict[str, Any]] | None:
    """Run the scan if no worker has run it today (claimed atomically); None when already done."""
    today = today or services.today()
    try:
        with services.db.unit_of_work() as session:
            if session.get(ScheduledRun, "rotation_scan") is None:
                session.add(ScheduledRun(name="rotation_scan", last_run_on=date.min))
    except WrittenMeanwhile:
        pass  # another worker created the marker at the same moment
    with services.db.unit_of_work() as session:  # claim and scan commit together, or neither
        claimed = rows_changed(session, update(ScheduledRun).where(
            ScheduledRun.name == "rotation_scan", ScheduledRun.last_run_on < today).values(last_run_on=today))
        if claimed != 1:
            return None
        return _scan(services, session, SYSTEM, today)
