"""Personal-matters reports (家庭成员和财产变动报告, seed 四(二); docs/processes.md §9).

Records on the cadre, not a process, each vouched for by the cadre's hash-chained report log (report_log.py). A
change reported later than the `personal_report` deadline after it happened, or found unreported, opens a linked
`admonishment` case for the cadre with trigger `report_violation` (seed: 应报告而未报告…诫勉谈话).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from service.db.models import PersonalReport, utcnow
from service.errors import Invalid
from workflows.engine import add_duration

from . import policy
from .context import SYSTEM, Actor, Services
from .forms import TEXT_LIMIT, shorten, validate_form
from .report_log import lock_reports, record_report
from .stepper import start_in_session
from .views import personal_report_view

KINDS = {"family": "家庭成员变动", "property": "财产变动", "other": "其他事项"}
DEADLINE_KEY = "personal_report"
ADMONISHMENT = "admonishment"
REPORT_FORM = {
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
    event_on, reported_on = date.fromisoformat(fields["event_on"]), date.fromisoformat(fields["reported_on"])
    today = services.today()
    if reported_on < event_on:
        raise Invalid("the report cannot precede the change (报告日期不能早于变动日期)",
                      {"reported_on": "不能早于变动发生日期 (must not be before event_on)"})
    if reported_on > today:
        raise Invalid("the report date lies in the future (报告日期不能晚于今天)",
                      {"reported_on": "不能晚于今天 (must not be after today)"})
    with services.db.unit_of_work() as session:
        cadre = lock_reports(session, policy.readable_cadre(session, actor, cadre_id).id)
        report = PersonalReport(cadre_id=cadre.id, kind=fields["kind"], event_on=event_on, reported_on=reported_on,
                                summary=fields["summary"], found_unreported=bool(fields.get("found_unreported")),
                                late=is_late(services, event_on, reported_on), recorded_by=actor.username,
                                recorded_at=utcnow())
        session.add(report)
        session.flush()
        if report.late or report.found_unreported:
            case = start_in_session(services, session, SYSTEM, ADMONISHMENT, cadre.id,
                                    {"trigger": "report_violation", "summary": _summary(report)}, parent=None)
            report.case_id = case.id
            session.flush()
        record_report(session, cadre, actor.username, "report", report)  # as stored, its admonishment linked
        return personal_report_view(report)


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
