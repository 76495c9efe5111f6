"""Personal-matters reports (家庭成员和财产变动报告, seed 四(二); docs/processes.md §9).

Records on the cadre, not a process, each vouched for by the cadre's hash-chained report log (report_log.py). A
change reported later than the `personal_report` deadline after it happened, or found unreported, opens a linked
`admonishment` case for the cadre with trigger `report_violation` (seed: 应报告而未报告…诫勉谈话).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, PersonalReport, utcnow
from service.errors import Conflict, Invalid, NotFound
from workflows.engine import add_duration

from . import policy, queries
from .context import SYSTEM, Actor, Services
from .forms import TEXT_LIMIT, shorten, validate_form
from .report_log import lock_reports, record_report
from .stepper import start_in_session
from .views import CORRECT, corrections_of, personal_report_view

KINDS = {"family": "家庭成员变动", "property": "财产变动", "other": "其他事项"}
DEADLINE_KEY = "personal_report"
ADMONISHMENT = "admonishment"
REPORT_FORM: dict[str, Any] = {
    "type": "object", "title": "个人有关事项报告",
    "properties": {
        "kind": {"type": "string", "title": "类别", "enum": list(KINDS), "x-enumNames": list(KINDS.values())},
        "event_on": {"type": "string", "title": "变动发生日期", "format": "date"},
        "reported_on": {"type": "string", "title": "报告日期（或发现日期）", "format": "date"},
        "summary": {"type": "string", "title": "变动情况", "minLength": 1, "maxLength": 2000},
        "found_unreported": {"type": "boolean", "title": "应报未报，事后发现"},
    },
    "required": ["kind", "event_on", "reported_on", "summary"], "additionalProperties": False,
}


def add_report(services: Services, actor: Actor, cadre_id: str, data: Any) -> dict[str, Any]:
    """Record a report on a cadre (org_dept); a late or unreported change opens an admonishment."""
    policy.require(actor, "personal_report.write")
    fields = validate_form(REPORT_FORM, data, lambda *_: True)
    event_on, reported_on = _dates(services, fields)
    with services.db.unit_of_work() as session:
        cadre = lock_reports(session, policy.readable_cadre(session, actor, cadre_id).id)
        report = PersonalReport(cadre_id=cadre.id, kind=fields["kind"], event_on=event_on, reported_on=reported_on,
                                summary=fields["summary"], found_unreported=bool(fields.get("found_unreported")),
                                late=is_late(services, event_on, reported_on), recorded_by=actor.username,
                                recorded_at=utcnow())
        session.add(report)
        session.flush()
        _admonish_if_violated(services, session, cadre, report)
        record_report(session, cadre, actor.username, "report", report)  # as stored, its admonishment linked
        return personal_report_view(report)


def correct_report(services: Services, actor: Actor, cadre_id: str, report_id: int, data: Any,
                   base_revision: int | None = None) -> dict[str, Any]:
    """Correct a report's fields (org_dept) with a reason, logged as a `correct` entry of the cadre's report log.

    `late` is recomputed; a report made late or found unreported without an admonishment opens one, as a new
    report would. One neither late nor unreported keeps its admonishment (the discipline inspectors decide on
    it): the answer's `admonishment` says `stays_open` while that case runs. With `base_revision` (the report's
    `revision` the correction was made from) a report corrected since is a Conflict, nothing stored."""
    policy.require(actor, "personal_report.write")
    fields = validate_form(CORRECT_FORM, _reason_stripped(data), lambda *_: True)
    event_on, reported_on = _dates(services, fields)
    new = {"kind": fields["kind"], "event_on": event_on, "reported_on": reported_on, "summary": fields["summary"],
           "found_unreported": fields["found_unreported"]}
    with services.db.unit_of_work() as session:
        cadre = lock_reports(session, policy.readable_cadre(session, actor, cadre_id).id)
        report = _report_of(session, cadre.id, report_id)
        _require_revision(report.id, len(corrections_of(session, cadre.id).get(report.id, [])), base_revision)
        _restate(services, report, new)
        opened = _admonish_if_violated(services, session, cadre, report)
        record_report(session, cadre, actor.username, CORRECT, report, reason=fields["reason"])
        return _corrected_view(session, actor, report, opened)


def _require_revision(report_id: int, revision: int, based_on: int | None) -> None:
    """Refuse a correction made from another revision of the report than its current one (another clerk corrected
    it meanwhile), as processes._require_newest refuses a deploy. Checked under the cadre's report-log lock: of two
    corrections made from one revision, the second to take the lock finds the first's and is refused."""
    if based_on is None or based_on == revision:
        return
    raise Conflict(f"该报告已被他人更正（第 {revision} 次），请查看最新内容后再更正 (personal report {report_id} "
                   f"was corrected by someone else meanwhile: it is at revision {revision}, this correction was "
                   f"made from revision {based_on}; read it as it now stands, then correct it)")


def _restate(services: Services, report: PersonalReport, new: dict[str, Any]) -> None:
    """Give the report its corrected values and recompute `late`; nothing to correct is a 422."""
    if all(getattr(report, name) == value for name, value in new.items()):
        raise Invalid("无更正内容 (nothing to correct)",
                      {"_form": "所填内容与原报告相同 (the values are those of the report already)"})
    for name, value in new.items():
        setattr(report, name, value)
    report.late = is_late(services, report.event_on, report.reported_on)


def _corrected_view(session: Session, actor: Actor, report: PersonalReport, opened: bool) -> dict[str, Any]:
    """The report as listed on the cadre (its admonishment named to its readers, or to all when this correction
    opened it, as add_report does), and what became of its admonishment."""
    session.flush()
    view = personal_report_view(report, corrections_of(session, report.cadre_id).get(report.id, []))
    shown = opened or report.case_id in policy.readable_case_ids(session, actor, [report.case_id])
    stays_open = not (opened or report.late or report.found_unreported) and _running(session, report.case_id)
    return {**view, "case_id": report.case_id if shown else None,
            "admonishment": "opened" if opened else "stays_open" if stays_open else None,
            "notice": STAYS_OPEN if stays_open else None}


STAYS_OPEN = ("更正后已不属逾期或应报未报，但关联的诫勉案件不会自动撤销，仍在办理，请纪检人员审查 "
              "(no longer late nor unreported, but the linked admonishment is not cancelled automatically: "
              "it stays open for the discipline inspectors to review)")
REASON_LIMIT = 500
CORRECT_FORM = {
    **REPORT_FORM, "title": "更正个人有关事项报告",
    "properties": {**REPORT_FORM["properties"],
                   "reason": {"type": "string", "title": "更正理由", "minLength": 1, "maxLength": REASON_LIMIT}},
    # The whole report as corrected: an omitted found_unreported would otherwise silently clear a finding.
    "required": [*REPORT_FORM["required"], "found_unreported", "reason"],
}


def _reason_stripped(data: Any) -> Any:
    """The data with its reason stripped, so a reason of blanks is empty and blanks around one count for nothing."""
    if isinstance(data, dict) and isinstance(data.get("reason"), str):
        return {**data, "reason": data["reason"].strip()}
    return data


def _dates(services: Services, fields: dict[str, Any]) -> tuple[date, date]:
    """The report's change and report dates, once they make sense together: reported on or after the change,
    not in the future."""
    event_on, reported_on = date.fromisoformat(fields["event_on"]), date.fromisoformat(fields["reported_on"])
    if reported_on < event_on:
        raise Invalid("the report cannot precede the change (报告日期不能早于变动日期)",
                      {"reported_on": "不能早于变动发生日期 (must not be before event_on)"})
    if reported_on > services.today():
        raise Invalid("the report date lies in the future (报告日期不能晚于今天)",
                      {"reported_on": "不能晚于今天 (must not be after today)"})
    return event_on, reported_on


def _report_of(session: Session, cadre_id: str, report_id: int) -> PersonalReport:
    """The cadre's report; NotFound for an unknown id and for another cadre's alike (no id is probed so)."""
    query = select(PersonalReport).where(PersonalReport.id == report_id, PersonalReport.cadre_id == cadre_id)
    report = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if report is None:
        raise unknown_report(report_id)
    return report


def unknown_report(report_id: int) -> NotFound:
    return NotFound(f"报告不存在 (personal report {report_id} not found)")


def _admonish_if_violated(services: Services, session: Session, cadre: Cadre, report: PersonalReport) -> bool:
    """Open the report's admonishment if it is late or found unreported and has none yet; whether it did."""
    if not (report.late or report.found_unreported) or report.case_id is not None:
        return False
    case = start_in_session(services, session, SYSTEM, ADMONISHMENT, cadre.id,
                            {"trigger": "report_violation", "summary": _summary(report)}, parent=None)
    report.case_id = case.id
    session.flush()
    return True


def _running(session: Session, case_id: int | None) -> bool:
    return case_id is not None and session.scalar(select(Case.status).where(Case.id == case_id)) in queries.UNFINISHED


def is_late(services: Services, event_on: date, reported_on: date) -> bool:
    """Whether `reported_on − event_on` exceeds the configured `personal_report` deadline."""
    duration = str(services.settings["DEADLINES"].get(DEADLINE_KEY, "P30D"))
    start = datetime.combine(event_on, time())
    return datetime.combine(reported_on, time()) > add_duration(start, duration)


def _summary(report: PersonalReport) -> str:
    """The admonishment's summary: what was reported, its dates, and as much of the report's own text as fits
    the admonishment's summary (a report at its own limit would otherwise refuse the case it must open)."""
    what = "应报告而未报告" if report.found_unreported else "逾期报告"
    head = f"{what}{KINDS[report.kind]}："
    tail = f"（变动日期 {report.event_on.isoformat()}，报告/发现日期 {report.reported_on.isoformat()}）"
    return head + shorten(report.summary, TEXT_LIMIT - len(head) - len(tail)) + tail
