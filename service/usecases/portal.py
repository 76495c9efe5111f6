"""The public portal (网络举报平台, 任前公示): reports and objections from anyone, tracked by code and key.

Nobody logs in here. A report opens a `public_report` case (docs/processes.md §7, channel `web`) as the
system; an objection reaches the vetting case in its public notice as the `vetting_objection`
message. Each hands out a tracking code and a query key; only the key's hash is kept, and a wrong
key answers exactly like an unknown code. The reporter sees a status and the reply, nothing internal.
An objector's contact stays in the portal's own table, never in the vetting case (which the
organisation department reads): only the discipline roles read contacts (policy `reporter.contact`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, CaseWait, HistoryEntry, PublicReport, Task, utcnow
from service.db.uow import existing
from service.errors import Conflict, Invalid, NotFound
from workflows.engine import Step

from . import access_log, casefile, messages, policy, queries, views
from .context import SYSTEM, Actor, Services
from .public_posts import Admission, admit
from .reminders import local_date
from .stepper import EngineCall, start_in_session
from .steps import held_since

PROCESS, VETTING, OBJECTION = "public_report", "pre_appointment_vetting", "vetting_objection"
NOTICE_ENDS = ("public_notice_expired", "objection_received")  # the catch events ending a vetting case's notice
CHANNELS = {"web": "网络举报平台", "hotline": "专线举报电话", "qq": "信访举报QQ", "tv": "电视曝光台"}
CATEGORIES = {"decision_failure": "决策严重失误", "supervision_failure": "失职、监督不力",
              "abuse_of_power": "滥用职权", "inaction": "不作为、慢作为", "selection_violation": "用人失察",
              "other": "其他"}
MAX_CONTENT, MAX_NAME, MAX_UNIT, MAX_CONTACT = 20_000, 100, 200, 200
# Markup of any kind: a tag, a closing tag, a comment or declaration, an entity. Reports are plain text.
MARKUP = re.compile(r"<\s*[A-Za-z/!?]|&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
# Characters that change how the text around them shows without being seen themselves: C0 and C1 controls
# (ESC, BEL, VT...; NUL has its own check) and the bidi embeddings, overrides and isolates (U+202E shows
# "张三\u202e长局局通交县" to the discipline officer who triages it as 张三县交通局局长), and the bidi marks LRM,
# RLM and ALM, strong characters of their own ("处分 3\u200f-5 年" shows as 处分 35- 年). Anywhere in a public text.
HIDDEN = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
LINE_BREAK = re.compile("[\t\n\r\u2028\u2029]")  # only `content` is more than one line
MULTILINE = frozenset({"content"})
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed from paper
STATUSES = {"received": "已受理，待分流", "processing": "办理中", "replied": "已答复", "closed": "已办结"}
_CODE = re.compile(f"JB[{_CODE_ALPHABET}]{{10}}")  # what `_hand_out` makes


def submit_report(services: Services, data: Any, admission: Admission) -> dict[str, str]:
    """A report from the public: opens its case and returns `{tracking_code, query_key}`."""
    admit(services, admission)
    fields = _checked(data, {"subject_name": (True, MAX_NAME), "subject_unit": (True, MAX_UNIT),
                             "category": (True, None), "content": (True, MAX_CONTENT),
                             "contact": (False, MAX_CONTACT)})
    if fields["category"] not in CATEGORIES:
        raise Invalid("the form has errors (表单填写有误)", {"category": "取值无效 (not a category)"})
    start = {"channel": "web", **{k: v for k, v in fields.items() if v}}
    with services.db.unit_of_work() as session:
        case = start_in_session(services, session, SYSTEM, PROCESS, None, start, parent=None)
        return _hand_out(session, "report", case.id)


def track(services: Services, code: Any, key: Any) -> dict[str, Any]:
    """What the reporter may know: status, when received, and the reply once there is one."""
    with services.db.unit_of_work(write=False) as session:
        report = _by_code(session, code, key)
        case = existing(session, Case, report.case_id)
        going = case.status in queries.UNFINISHED  # a case in incident is still being handled
        if report.kind == "objection":
            status = "processing" if going else "closed"
            return {"status": status, "status_name": STATUSES[status], "received_at": views.iso(report.created_at),
                    "kind": "objection"}
        reply = case.data.get("reply") if case.status == "completed" else None
        if reply:
            status = "replied"
        elif going and not _triaged(session, case):
            status = "received"
        else:
            status = "processing" if going else "closed"
        view = {"status": status, "status_name": STATUSES[status], "received_at": views.iso(report.created_at),
                "kind": "report"}
        if reply:
            view["reply"] = reply
        return view


def notices(services: Services) -> list[dict[str, Any]]:
    """The vetting cases now in their public notice (任前公示), as the public sees them."""
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(select(Case, Cadre).join(Cadre, Cadre.id == Case.cadre_id).where(
            _at_notice(), _running()).order_by(Case.id))
        return [{"id": case.id, "cadre_name": cadre.name, "unit": cadre.unit, "current_post": cadre.post,
                 "proposed_post": case.data.get("proposed_post", ""),
                 "ends_on": local_date(services, case.next_timer_due)}
                for case, cadre in rows]


def object_to_notice(services: Services, case_id: Any, data: Any, admission: Admission) -> dict[str, str]:
    """An objection to a notice: the vetting case takes it as `vetting_objection` (409 once the period
    is over or an objection ended it; 404 before the notice, like an unknown id); tracked like a report."""
    admit(services, admission)
    fields = _checked(data, {"content": (True, MAX_CONTENT), "contact": (False, MAX_CONTACT)})
    over = Conflict("the public notice period is over (公示期已结束，不再受理异议)")
    if not isinstance(case_id, int) or not _waits_at_notice(services, case_id):
        if isinstance(case_id, int) and _waits_at_notice(services, case_id, "incident"):
            raise Conflict(REPAIRING) if _running_when_held(services, case_id) else over
        if not (isinstance(case_id, int) and _notice_held(services, case_id)):
            raise NotFound(f"notice {case_id} not found (公示不存在)")
        raise over
    try:
        # One unit of work: an objection that ends the notice is never left without its tracking record (the
        # objector's code and contact, the row the triage inbox lists), nor that record without the objection.
        with services.db.unit_of_work() as session:
            taken = messages.deliver_in_session(services, session, SYSTEM, OBJECTION, case_id,
                                                {"report": fields["content"], "channel": "web"})
            handed = _hand_out(session, "objection", case_id, fields["content"],
                               fields.get("contact") or None) if taken else None
    except Conflict:
        raise over from None
    if handed is None:  # the period ran out just now: the timers that fired are committed, nothing else
        raise over
    return handed


# Staff: the triage inbox and a report's file.

def triage_inbox(services: Services, actor: Actor, page: int = 1) -> dict[str, Any]:
    """The discipline roles' triage page in one read: a page of open reports, oldest first, with where each
    stands, and the newest objections. Paged in SQL: a flood of anonymous reports must not slow the page."""
    policy.require(actor, "report.inbox")
    with services.db.unit_of_work(write=False) as session:
        # Unfinished, not only open: a report held in an incident is not over, and must not drop out of the page.
        query = select(Case).where(Case.process_key == PROCESS, queries.unfinished(),
                                   policy.case_filter(actor)).order_by(Case.id)
        cases, where = queries.page_of(session, query, page, INBOX_PAGE)
        tasks, now = _open_tasks(session, [case.id for case in cases]), utcnow()
        return {"reports": {**where, "items": [_report_row(case, tasks.get(case.id, []), now) for case in cases]},
                "objections": _objections(session, actor)}


INBOX_PAGE = 50  # reports on one page of the triage inbox


def _open_tasks(session: Session, case_ids: list[int]) -> dict[int, list[Task]]:
    """The open tasks of these cases, by case, oldest first."""
    by_case: dict[int, list[Task]] = {}
    for task in session.scalars(select(Task).where(Task.case_id.in_(case_ids), Task.status == "open")
                                .order_by(Task.created_at)):
        by_case.setdefault(task.case_id, []).append(task)
    return by_case


def _objections(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The 200 newest objections to public notices, with the objector's contact (discipline roles only)."""
    contacts = policy.allows(actor, "reporter.contact")
    rows = session.execute(select(PublicReport, Case, Cadre).join(Case, Case.id == PublicReport.case_id)
                           .join(Cadre, Cadre.id == Case.cadre_id)
                           .where(PublicReport.kind == "objection", policy.case_filter(actor))
                           .order_by(PublicReport.id.desc()).limit(200))
    return [{"tracking_code": report.tracking_code, "case_id": case.id, "cadre_name": cadre.name,
             "proposed_post": case.data.get("proposed_post", ""), "content": report.content,
             "contact": report.contact if contacts else None, "received_at": views.iso(report.created_at),
             "case_status": case.status} for report, case, cadre in rows]


def report_file(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """One report: what was reported, the contact (discipline roles only), its tracking and history."""
    policy.require(actor, "report.inbox")
    with services.db.unit_of_work(write=False) as session:
        case = policy.readable_case(session, actor, case_id)
        if case.process_key != PROCESS:
            raise NotFound(f"report {case_id} not found (举报不存在)")
        report = session.scalar(select(PublicReport).where(PublicReport.case_id == case.id,
                                                           PublicReport.kind == "report"))
        entries = casefile.history(session, case.id, actor)
        open_tasks = _open_tasks(session, [case.id]).get(case.id, [])
        now = utcnow()
        row = _report_row(case, open_tasks, now)
        file = {**row, "contact": case.data.get("contact") if policy.allows(actor, "reporter.contact") else None,
                "content": case.data.get("content", ""), "data": _public_fields(case.data),
                "tracking_code": report.tracking_code if report else None,
                "history": entries, "tracking": _tracking(session, case, report),
                "cadre": casefile.cadre_brief(session, case.cadre_id) if case.cadre_id else None,
                "open_tasks": [{"id": t.id, "element_id": t.element_id, "name": t.name, "role": t.role,
                                "due_at": views.iso(t.due_at), "overdue": queries.is_overdue(t, now)}
                               for t in open_tasks],
                "child_case_ids": list(session.scalars(select(Case.id).where(Case.parent_case_id == case.id,
                                                                             policy.case_filter(actor))))}
    access_log.note(services, actor, "report_page", case_id, file["cadre_id"])
    return file


def _report_row(case: Case, tasks: list[Task], now: datetime) -> dict[str, Any]:
    """A report in the triage inbox: what it names, and where it stands by its open `tasks` (overdue as every other
    list says it, queries.is_overdue: not only once a worker fired the deadline's timer)."""
    data = case.data or {}
    return {"id": case.id, "channel": data.get("channel"), "subject_name": data.get("subject_name"),
            "subject_unit": data.get("subject_unit"), "category": data.get("category"),
            "category_name": CATEGORIES.get(str(data.get("category")), data.get("category")),
            "received_at": views.iso(case.created_at), "status": case.status, "outcome": case.outcome,
            "cadre_id": case.cadre_id, "decision": data.get("decision"),
            "stage": ", ".join(sorted(t.name for t in tasks)),
            "overdue": any(queries.is_overdue(t, now) for t in tasks),
            "triage_task_id": next((t.id for t in tasks if t.element_id == "triage_report"), None),
            "reply_task_id": next((t.id for t in tasks if t.element_id == "reply_to_reporter"), None)}


def _tracking(session: Session, case: Case, report: PublicReport | None) -> list[dict[str, Any]]:
    """What the reporter has been shown over time: received, triaged (processing), replied."""
    steps = [{"at": views.iso(case.created_at), "status": "received", "status_name": STATUSES["received"]}]
    done = {task.element_id: task for task in session.scalars(select(Task).where(
        Task.case_id == case.id, Task.status == "completed", Task.element_id.in_(("triage_report",
                                                                                  "reply_to_reporter"))))}
    if "triage_report" in done:
        steps.append({"at": views.iso(done["triage_report"].completed_at), "status": "processing",
                      "status_name": STATUSES["processing"]})
    if "reply_to_reporter" in done:
        steps.append({"at": views.iso(done["reply_to_reporter"].completed_at), "status": "replied",
                      "status_name": STATUSES["replied"], "reply": case.data.get("reply")})
    return steps


def _public_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("contact", "results")}


def _triaged(session: Session, case: Case) -> bool:
    return session.scalar(select(Task.id).where(Task.case_id == case.id, Task.element_id == "triage_report",
                                                Task.status == "completed")) is not None


# A vetting case held in incident at its notice takes no message until an admin's retry reopens it (no case in
# incident does: its state is what the admin repairs), so its notice is not listed and objections wait.
REPAIRING = ("公示所涉案件正在排除故障，暂不受理异议，请稍后再提交 "
             "(the case of this notice is held for repair: objections are not taken now, please try again later)")


NOTICE_TIMER = "public_notice"  # the event-based gateway waiting for the period's timer: SpiffWorkflow keeps it there


def retry_call(services: Services, session: Session, case: Case, detail: dict[str, Any]) -> EngineCall:
    """The engine call retrying a case held as an incident. A vetting case held at its public notice first gets
    the time it was held added to its period, through the engine: held, it was off the list and took no
    objection, and the public is owed the whole period (seed 三(三), PROCESSES.md §1 `public_notice`); `detail`,
    the retry's history entry, says by how much and until when."""
    if session.scalar(select(Case.id).where(Case.id == case.id, _at_notice("incident"))) is None:
        return services.runner.retry
    seconds = max(0.0, (utcnow() - datetime.fromisoformat(held_since(case))).total_seconds())

    def call(definition: Any, state: str, handler: Any) -> Step:
        moved = services.runner.postpone(definition, state, NOTICE_TIMER, seconds)
        detail.update({"notice_held_seconds": round(seconds, 3), "notice_until": moved.next_timer_due})
        return services.runner.retry(definition, moved.state, handler)
    return call


def _at_notice(status: str = "open") -> ColumnElement[bool]:
    """Vetting cases of `status` waiting for an objection: at their public notice, though its period may have run
    out with its timer not fired yet."""
    waiting = select(CaseWait.case_id).where(CaseWait.kind == "message", CaseWait.name == OBJECTION)
    return and_(Case.process_key == VETTING, Case.status == status, Case.id.in_(waiting))


def _running() -> ColumnElement[bool]:
    """A timer past due ends the period now, whenever a worker fires it: a notice runs until its end only."""
    return or_(Case.next_timer_due.is_(None), Case.next_timer_due > utcnow())


def _running_when_held(services: Services, case_id: int) -> bool:
    """Whether a notice held as an incident was still running when the hold began: its retry gives the time held
    back (retry_call), so an objection is to be tried later even once the clock passed the notice's old end."""
    with services.db.unit_of_work(write=False) as session:
        case = session.get(Case, case_id)
        due = case.next_timer_due if case is not None else None
        return case is not None and (due is None or due > datetime.fromisoformat(held_since(case)))


def _waits_at_notice(services: Services, case_id: int, status: str = "open", *also: ColumnElement[bool]) -> bool:
    """Whether the case is at its public notice (a period run out but not yet fired included: the delivery fires
    it first, and answers 409), of `status` and `also`."""
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(Case.id).where(Case.id == case_id, _at_notice(status), *also)) is not None


def _notice_held(services: Services, case_id: int) -> bool:
    """Whether a vetting case's public notice has happened (its period ran out or an objection ended it):
    only then is an objection a 409; any other id, a vetting case before its notice too, is a 404."""
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(HistoryEntry.id).join(Case, Case.id == HistoryEntry.case_id).where(
            Case.id == case_id, Case.process_key == VETTING, HistoryEntry.task.in_(NOTICE_ENDS)).limit(1)) is not None


def _hand_out(session: Session, kind: str, case_id: int, content: str | None = None,
              contact: str | None = None) -> dict[str, str]:
    key = secrets.token_urlsafe(12)
    while True:
        code = "JB" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        if session.scalar(select(PublicReport.id).where(PublicReport.tracking_code == code)) is None:
            break
    session.add(PublicReport(tracking_code=code, key_hash=_hash(key), kind=kind, case_id=case_id,
                             content=content, contact=contact))
    return {"tracking_code": code, "query_key": key}


def _by_code(session: Session, code: Any, key: Any) -> PublicReport:
    missing = NotFound("no report with this code and key (查询码或查询密钥不正确)")
    if not isinstance(code, str) or not isinstance(key, str) or len(code) > 20 or len(key) > 100:
        raise missing
    code = code.strip().upper()
    if not _CODE.fullmatch(code):  # nothing else was handed out (and PostgreSQL refuses a NUL: a 500)
        raise missing
    report = session.scalar(select(PublicReport).where(PublicReport.tracking_code == code))
    if report is None or not hmac.compare_digest(report.key_hash, _hash(key.strip())):
        raise missing
    return report


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _checked(data: Any, wanted: dict[str, tuple[bool, int | None]]) -> dict[str, str]:
    """Plain-text fields, trimmed: required ones present, none too long, no markup; 422 per field."""
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object (数据必须是对象)", {"data": "必须是对象 (must be an object)"})
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, (required, limit) in wanted.items():
        value = data.get(name)
        problem = _text_problem(value, required, limit, multiline=name in MULTILINE)
        if problem:
            errors[name] = problem
        elif isinstance(value, str) and value.strip():
            fields[name] = value.strip()
    unknown = sorted(set(data) - set(wanted) - {"pow_challenge", "pow_nonce", "csrf_token"})
    for name in unknown:
        errors[name] = "不是此表单的字段 (not a field of this form)"
    if errors:
        raise Invalid("the form has errors (表单填写有误)", errors)
    return fields


def _text_problem(value: Any, required: bool, limit: int | None, multiline: bool = True) -> str | None:
    if value is None or value == "":
        return "必填 (required)" if required else None
    if not isinstance(value, str):
        return "须为文本 (must be text)"
    if required and not _visible(value):
        return "不能为空 (must not be empty)"
    if limit is not None and len(value) > limit:
        return f"不能超过 {limit} 字 (at most {limit} characters)"
    if MARKUP.search(value):
        return "只接受纯文本，不能含 HTML (plain text only, no HTML)"
    if "\x00" in value:
        return "含有无效字符 (invalid characters)"
    return hidden_problem(value, multiline)


def _visible(value: str) -> bool:
    """Whether a text shows anything: zero-width spaces and joiners (format characters) pass `str.strip`, so a
    name of them alone would reach the triage inbox as nobody."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in value)


def hidden_problem(value: str, multiline: bool) -> str | None:
    """What is wrong with a public text's invisible characters (controls, bidi overrides; line breaks in a
    one-line field), if anything."""
    if HIDDEN.search(value):
        return "含有不可见的控制字符 (contains invisible control characters)"
    if not multiline and LINE_BREAK.search(value.strip()):
        return "不能换行 (must be a single line)"
    return None
