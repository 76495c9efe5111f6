"""Start rules: what the service, not the caller, decides about the start of some processes.

The start form checks the shape of a new case's start data. A process may also have one start rule here,
which checks the start against the records and takes from them the facts its BPMN relies on, whoever starts
the case: a person (`POST /api/cases`), a bulk start, a scan, another case (docs/processes.md §6–§8).

- `rotation_review`: `post_level`, `rule` and `years_in_post` come from the cadre's record as the rotation
  scan computes them, whatever the caller sent (they decide whether `keep` is allowed and whether a departure
  audit comes first); a cadre no rule applies to is refused (422), and so is a second unfinished review (409).
- `integrity_report`: for `leading` cadres only (422), never twice for a cadre and year (409; a cancelled case
  does not count).
- `public_report` (and any process of `steps.CADRE_FROM_TASK`): no cadre at the start (422); triage links one.
- `early_warning` (any process of `DECISION_ONLY`): never a case (422), whoever asks, admin included; the
  early-warning scan runs it through the executor for its decision table and stores nothing of it.

A rule sees a batch of starts at once (a bulk start checks its cadres in a fixed number of queries) and
answers, for each, the start data to use or the error that refuses it. It locks the cadres it reads, so two
starts for the same cadre wait for each other instead of both finding no case yet.

A refusal is told as the starter may know it: whoever may start a process may choose any cadre without reading
the file (`cadre.pick`), so a starter who may not read the cadre learns only that it does not qualify now, the
same words and status whatever the reason (its post level, or a case of it); one who reads the cadre but not the
case a refusal names gets the reason without the case's id. A start a case asks for (a call activity, a service
task opening a case) is checked as the system, but its refusal becomes the calling case's incident, read by
whoever reads that case: it never names the other case (`names_cases=False`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case
from service.errors import Conflict, Invalid, ServiceError

from . import policy, queries, rotation
from .context import Actor
from .steps import CADRE_FROM_TASK

Start = dict[str, Any]  # a new case's start data, `cadre_id` included
# Processes run only for their decision table (the early-warning scan, early_warning.py): started as a case, one
# would run its table on start data lacking the scan's signals and stop in an incident.
DECISION_ONLY = frozenset({"early_warning"})
NEVER_A_CASE = "不能作为案件发起 (cannot be started as a case)"  # what the `process` field of such a start is told
NOT_QUALIFIED = "该干部当前不符合发起条件 (the cadre does not qualify for this process now)"
Checked = Start | ServiceError


@dataclass(frozen=True)
class Refusal:
    """A start a rule refuses for a fact of the cadre's file (`says`: the error, naming the case or not)."""

    cadre_id: str
    says: Callable[[int | None], ServiceError]
    case_id: int | None = None


Ruled = Start | Refusal | ServiceError  # what a rule answers for a start, before it is told
Rule = Callable[[Session, list[Start], date], list[Ruled]]


def check(session: Session, actor: Actor, process: str, starts: list[Start], on: date,
          names_cases: bool = True) -> list[Checked]:
    """Each start as its process's rule takes it (facts from the records) or refuses it, the refusal told as
    `actor` may know it; `on` is the day the facts are taken on (today, or the day a scan runs for). Without
    `names_cases`, a refusal names no case whoever the actor: its text is stored where others read it."""
    rule = RULES.get(process)
    if rule is None or not starts:
        return list(starts)
    ruled = rule(session, starts, on)
    refusals = [item for item in ruled if isinstance(item, Refusal)]
    if not refusals:
        return [item for item in ruled if not isinstance(item, Refusal)]
    cadres = _readable_cadres(session, actor, {refusal.cadre_id for refusal in refusals})
    cases = policy.readable_case_ids(session, actor, [refusal.case_id for refusal in refusals]) if names_cases \
        else set()
    return [_told(item, cadres, cases) if isinstance(item, Refusal) else item for item in ruled]


def _readable_cadres(session: Session, actor: Actor, cadre_ids: set[str]) -> set[str]:
    if policy.reads_every_cadre(actor):
        return cadre_ids
    return set(session.scalars(select(Cadre.id).where(Cadre.id.in_(sorted(cadre_ids)), policy.cadre_filter(actor))))


def _told(refusal: Refusal, cadres: set[str], cases: set[int]) -> ServiceError:
    """The refusal as its starter may know it: nothing of a file it may not read, no case it may not read."""
    if refusal.cadre_id not in cadres:
        return Invalid(f"干部 {refusal.cadre_id} 当前不符合发起条件 (cadre {refusal.cadre_id} does not qualify for "
                       "this process now)", {"cadre_id": NOT_QUALIFIED})
    return refusal.says(refusal.case_id if refusal.case_id in cases else None)


def _rotation_review(session: Session, starts: list[Start], on: date) -> list[Ruled]:
    cadres = _locked_cadres(session, starts)
    busy: dict[str, int | None] = _cases_of(session, rotation.PROCESS, cadres, queries.unfinished())
    checked: list[Ruled] = []
    for start in starts:
        cadre = cadres.get(start["cadre_id"])
        due = rotation.due_rule(cadre, on) if cadre is not None else None
        if cadre is None or due is None:
            checked.append(Refusal(start["cadre_id"], partial(_no_rotation_rule, start["cadre_id"], on)))
        elif cadre.id in busy:
            checked.append(Refusal(cadre.id, partial(_review_unfinished, cadre.id), busy[cadre.id]))
        else:
            rule, years = due
            busy[cadre.id] = None  # a batch naming the cadre twice opens one review
            checked.append({**start, "post_level": cadre.post_level, "rule": rule, "years_in_post": years})
    return checked


def _no_rotation_rule(cadre_id: str, on: date, _case_id: int | None) -> ServiceError:
    return Invalid(f"no rotation rule applies to cadre {cadre_id} on {on.isoformat()} (该干部不符合轮岗交流条件)",
                   {"rule": "无适用的交流规则：须为任职满 10 年的领导干部或满 3 年的中层干部 (no rule applies: "
                            "leading cadres 10 years or more in the same post, middle cadres 3 years or more)"})


def _review_unfinished(cadre_id: str, case_id: int | None) -> ServiceError:
    return Conflict(f"cadre {cadre_id} already has an unfinished rotation review{_case(case_id)} "
                    f"(该干部已有未办结的轮岗交流案件)", {"cadre_id": "已有未办结的轮岗交流 (a review is unfinished)"})


INTEGRITY = "integrity_report"


def _integrity_report(session: Session, starts: list[Start], on: date) -> list[Ruled]:
    cadres = _locked_cadres(session, starts)
    rows = session.execute(select(Case.id, Case.cadre_id, Case.data).where(
        Case.process_key == INTEGRITY, Case.cadre_id.in_(cadres), Case.status != "cancelled"))
    taken: dict[tuple[Any, Any], int | None] = {
        (cadre_id, data.get("year")): case_id for case_id, cadre_id, data in rows if isinstance(data, dict)}
    checked: list[Ruled] = []
    for start in starts:
        cadre, key = cadres.get(start["cadre_id"]), (start["cadre_id"], start.get("year"))
        if cadre is None or cadre.post_level != "leading":
            checked.append(Refusal(start["cadre_id"], partial(_not_leading, start["cadre_id"])))
        elif key in taken:
            checked.append(Refusal(cadre.id, partial(_year_taken, cadre.id, key[1]), taken[key]))
        else:
            taken[key] = None  # a batch naming the cadre twice opens one case
            checked.append(start)
    return checked


def _not_leading(cadre_id: str, _case_id: int | None) -> ServiceError:
    return Invalid(f"述职述廉 is for leading cadres only; cadre {cadre_id} is not one (述职述廉只适用于领导干部)",
                   {"cadre_id": "不是领导干部 (not a leading cadre)"})


def _year_taken(cadre_id: str, year: Any, case_id: int | None) -> ServiceError:
    return Conflict(f"cadre {cadre_id} already has a 述职述廉 case for {year}{_case(case_id)} "
                    "(该干部该年度已有述职述廉)", {"year": "该年度已有述职述廉 (this year's report is open or done)"})


def _no_cadre_yet(session: Session, starts: list[Start], on: date) -> list[Ruled]:
    return [start if start.get("cadre_id") is None else Invalid(
        "a public report has no cadre until its triage links one (信访举报在登记分流时才关联干部)",
        {"cadre_id": "发起时不填，由登记分流关联 (leave empty: triage links the cadre)"}) for start in starts]


def _never_a_case(session: Session, starts: list[Start], on: date) -> list[Ruled]:
    message = "this process is run by the early-warning scan and opens no case (预警研判由预警排查运行，不开立案件)"
    return [Invalid(message, {"process": NEVER_A_CASE}) for _ in starts]


def _locked_cadres(session: Session, starts: list[Start]) -> dict[str, Cadre]:
    """The cadres the starts name, row-locked in id order (so concurrent starts cannot deadlock)."""
    ids = sorted({start["cadre_id"] for start in starts if isinstance(start.get("cadre_id"), str)})
    rows = session.scalars(select(Cadre).where(Cadre.id.in_(ids)).order_by(Cadre.id).with_for_update()
                           .execution_options(populate_existing=True))
    return {cadre.id: cadre for cadre in rows}


def _cases_of(session: Session, process: str, cadres: dict[str, Cadre],
              condition: ColumnElement[bool]) -> dict[str, int | None]:
    """For each of the cadres that has one, a case of the process that meets the condition."""
    rows = session.execute(select(Case.cadre_id, Case.id).where(
        Case.process_key == process, Case.cadre_id.in_(cadres), condition).order_by(Case.id))
    return {cadre_id: case_id for cadre_id, case_id in rows if cadre_id is not None}


def _case(case_id: int | None) -> str:
    return f", case {case_id}" if case_id else ""


RULES: dict[str, Rule] = {"rotation_review": _rotation_review, INTEGRITY: _integrity_report,
                          **dict.fromkeys(CADRE_FROM_TASK, _no_cadre_yet),
                          **dict.fromkeys(DECISION_ONLY, _never_a_case)}
