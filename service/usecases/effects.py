"""What a step does outside its case: the service's implementation of the glue's CaseEffects port (cadre
facts, posts, sanctions, audits, grades, disclosures, child cases) and the service-task callback the engine
calls with it. Effects that need the case's id wait in `deferred` until the step is stored (steps.apply_step).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

import workflows.glue as glue
from service.db.models import Assessment, Cadre, Case, ClearedAudit, Disclosure, Sanction, utcnow
from service.db.uow import existing
from workflows.engine import CALL_OPERATION, form_validator

from . import cadres, queries

Deferred = Callable[[Case], None]


class Effects:
    """The service's implementation of the glue's CaseEffects port, for one case in one session."""

    def __init__(self, session: Session, today: date, case_id: int | None = None) -> None:
        self.session = session
        self.today = today
        self.case_id = case_id  # the stepping case, once it has an id (effects that answer at once need it)
        self.deferred: list[Deferred] = []
        self.children: list[tuple[str, dict[str, Any], str | None]] = []  # process, data, calling task

    def cadre_facts(self, cadre_id: str) -> dict[str, Any]:
        cadre = self.session.get(Cadre, cadre_id)
        open_accountability = self.session.scalar(select(exists().where(
            Case.process_key == "accountability", queries.unfinished(), Case.cadre_id == cadre_id)))
        grades = sorted(cadre.assessments, key=lambda a: (a.year, a.id)) if cadre else []
        ban = cadre.promotion_ban_until if cadre else None
        return {"promotion_ban_until": ban.isoformat() if ban else "", "today": self.today.isoformat(),
                "open_accountability": bool(open_accountability),
                "latest_grade": grades[-1].grade if grades else ""}

    def set_post(self, cadre_id: str, post: str, started_on: date | None) -> None:
        cadres.change_post(self.session, cadre_id, post, started_on)

    def post_change_facts(self, cadre_id: str) -> dict[str, Any]:
        cadre = self.session.get(Cadre, cadre_id)
        return {"audit_required": cadre is not None and cadres.post_change_needs_audit(self.session, cadre),
                "post": cadre.post if cadre else "", "today": self.today.isoformat()}

    def record_sanction(self, cadre_id: str, sanction: str, ban_until: date) -> None:
        cadre = existing(self.session, Cadre, cadre_id)
        cadre.promotion_ban_until = max(ban_until, cadre.promotion_ban_until or ban_until)
        self.deferred.append(lambda case: self.session.add(
            Sanction(cadre_id=cadre_id, case_id=case.id, sanction=sanction, decided_on=self.today)))

    def record_cleared_audit(self, cadre_id: str) -> None:
        self.deferred.append(lambda case: self.session.add(
            ClearedAudit(cadre_id=cadre_id, case_id=case.id, cleared_on=self.today)))

    def record_assessment(self, cadre_id: str, year: int, grade: str) -> None:
        self.deferred.append(lambda case: self.session.add(
            Assessment(cadre_id=cadre_id, case_id=case.id, year=year, grade=grade)))

    def record_measure(self, cadre_id: str, year: int, measure: str) -> None:
        def apply(case: Case) -> None:
            self.session.flush()
            assessment = self.session.scalar(select(Assessment).where(
                Assessment.case_id == case.id, Assessment.year == year))
            if assessment is None:  # a redesigned diagram may handle before recording the grade
                assessment = Assessment(cadre_id=cadre_id, case_id=case.id, year=year, grade="incompetent")
                self.session.add(assessment)
            assessment.measure = measure
        self.deferred.append(apply)

    def open_disclosure(self, cadre_id: str, year: int) -> None:
        def apply(case: Case) -> None:
            row = self.session.scalar(select(Disclosure).where(Disclosure.case_id == case.id))
            if row is None:
                row = Disclosure(case_id=case.id, cadre_id=cadre_id, year=year)
                self.session.add(row)
            row.opened_at, row.closed_at, row.ends_at = utcnow(), None, case.next_timer_due
        self.deferred.append(apply)

    def close_disclosure(self) -> dict[str, Any]:
        row = self._disclosure()
        row.closed_at = row.closed_at or utcnow()
        return {**queries.disclosure_tally(self.session, row.id),
                "comments": queries.disclosure_comments(self.session, row.id, queries.MAX_TALLY_COMMENTS)}

    def record_integrity_evaluation(self, result: str, conclusion: str) -> None:
        row = self._disclosure()
        row.result, row.conclusion, row.concluded_on = result, conclusion, self.today

    def _disclosure(self) -> Disclosure:
        # Locked, so a rating cannot slip in between the tally and the close (disclosures.rate locks it too).
        row = self.session.scalar(select(Disclosure).where(Disclosure.case_id == self.case_id).with_for_update())
        if row is None:  # a redesigned diagram closes or records a disclosure it never opened
            raise LookupError("this case has no public disclosure: open_disclosure must run first "
                              "(此案件尚未公开公示：须先执行 open_disclosure)")
        return row

    def start_child_case(self, process: str, data: dict[str, Any], parent_task_id: str | None = None) -> None:
        self.children.append((process, dict(data), parent_task_id))


def _require_own_cadre(cadre_id: str | None, data: dict[str, Any]) -> None:
    """Glue reads the cadre from the case data, which a script may rewrite: a case of one cadre would otherwise
    sanction, move, audit or read another (a sanction on c2 from a case of c1)."""
    named = data.get("cadre_id")
    if cadre_id is not None and named != cadre_id:
        raise PermissionError(f"本案干部为 {cadre_id}，服务操作不能作用于其他干部 {named!r}（案件数据中的 cadre_id "
                              f"被改写） (this case's cadre is {cadre_id}; a service task may not act on {named!r}: "
                              "the case data's cadre_id was rewritten)")


CallOpener = Callable[[str, str, dict[str, Any]], None]
Handler = Callable[[str, dict[str, Any], dict[str, Any]], dict[str, Any]]  # (operation, data, params) -> result


def service_handler(process_key: str, effects: Effects, open_call: CallOpener | None = None,
                    cadre_id: str | None = None) -> Handler:
    """The callback the engine uses for service tasks (glue by name, with this case's effects) and
    for call activities (`open_call(process, calling task id, data)`). `cadre_id`: the case's cadre, the only
    one its glue may act on (None: a case whose cadre a task names, steps.CADRE_FROM_TASK)."""
    def handle(name: str, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        if name == CALL_OPERATION and open_call is not None:
            open_call(str(params["process"]), str(params["task_id"]), data)
            return {}
        _require_own_cadre(cadre_id, data)
        result = glue.operation(name)(effects, data, params)
        mismatch = next(iter(form_validator(dict(glue.SIGNATURES[name].result)).iter_errors(result)), None)
        if mismatch is not None:  # the glue broke its own declared contract: fail the step, visibly
            raise TypeError(f"operation {name} returned what its signature does not allow: {mismatch.message}")
        return result
    return handle
