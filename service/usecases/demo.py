"""Demo data: one user per role, a county's cadres, cases in several states, and some weeks of early warning."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from service.db.models import Cadre, Case
from service.errors import Conflict
from service.usecases import cadres, cases, early_warning, personal_reports, roles, tasks, users
from service.usecases.context import Actor, Services

DEMO_CADRES = [
    {"id": "c001", "name": "张伟", "unit": "县交通运输局", "post": "局长", "post_level": "leading",
     "post_started_on": "2014-03-01"},
    {"id": "c002", "name": "李娜", "unit": "县财政局", "post": "预算股股长", "post_level": "middle",
     "post_started_on": "2021-06-15"},
    {"id": "c003", "name": "王强", "unit": "富驿镇人民政府", "post": "镇长", "post_level": "leading",
     "post_started_on": "2019-01-10"},
    {"id": "c004", "name": "赵敏", "unit": "县教育局", "post": "办公室主任", "post_level": "middle",
     "post_started_on": "2022-09-01"},
    {"id": "c005", "name": "刘洋", "unit": "县住房和城乡建设局", "post": "副局长", "post_level": "leading",
     "post_started_on": "2016-05-20"},
    {"id": "c006", "name": "陈静", "unit": "县审计局", "post": "科员", "post_level": "staff",
     "post_started_on": "2020-02-01"},
]


def load_demo(services: Services, reset_passwords: bool = False) -> list[str]:
    """Create demo users, cadres and cases; returns lines to print (with the passwords it set).

    The demo loads into an empty database, or again into one it loaded: a database holding cadres or cases of
    its own is refused before anything is written (a Conflict). A demo user that exists already keeps its
    password (people may have changed it) unless `reset_passwords` asks for new ones; an account of a demo
    user's name that holds other roles than that one is not the demo's, and is never touched."""
    loaded = _already_loaded(services)
    if not loaded:
        _require_no_records(services)
    lines = ["demo users (username / password / roles):"]
    existing, codes = users.existing_accounts(services), roles.known_codes(services)
    not_ours = {role for role in codes if role in existing and existing[role] != {role}}
    for role in codes:
        if role in existing and (not reset_passwords or role in not_ours):
            kept = "(kept)" if role in not_ours else "(unchanged)"
            lines.append(f"  {role:16} {kept:14} {','.join(sorted(existing[role])) or '-'}")
            continue
        password = secrets.token_urlsafe(9)
        users.create_user(services, role, password, [role])
        lines.append(f"  {role:16} {password:14} {role}")
    if not_ours:
        lines.append("(kept): an account of that name holding other roles is not the demo's and was left alone "
                     "(同名但角色不同的账户不是演示账户，未作改动)")
    if existing and not reset_passwords:
        lines.append("existing demo users keep their passwords (演示用户保留原密码); "
                     "`cadreflow demo --reset-passwords` sets new ones")
    if loaded:
        lines.append("demo cadres and cases exist already")
        return lines
    org = _actor("org_dept")
    for cadre in DEMO_CADRES:
        cadres.create_cadre(services, org, cadre)
    lines.extend(_demo_cases(services))
    lines.extend(_demo_watch_history(services))
    return lines


def _already_loaded(services: Services) -> bool:
    """Whether the demo loaded this database: every demo cadre is there under its demo name."""
    with services.db.unit_of_work(write=False) as session:
        found = {cadre.id: cadre.name for cadre in session.scalars(
            select(Cadre).where(Cadre.id.in_([c["id"] for c in DEMO_CADRES])))}
    return found == {c["id"]: c["name"] for c in DEMO_CADRES}


def _require_no_records(services: Services) -> None:
    """Refuse a database that holds cadres or cases the demo did not make: its data would mix with theirs."""
    with services.db.unit_of_work(write=False) as session:
        held = {what: session.scalar(select(func.count()).select_from(model)) or 0
                for what, model in (("cadres", Cadre), ("cases", Case))}
    if any(held.values()):
        raise Conflict(f"this database holds {held['cadres']} cadre(s) and {held['cases']} case(s) the demo did "
                       "not load; the demo loads only into an empty database "
                       "(数据库中已有非演示数据，演示数据只能载入空数据库)")


def _actor(role: str) -> Actor:
    return Actor(role, frozenset({role}))


def _complete(services: Services, case: dict[str, Any], element_id: str, **data: Any) -> dict[str, Any]:
    task = next(t for t in case["open_tasks"] if t["element_id"] == element_id)
    return tasks.complete_task(services, _actor(task["role"] or "admin"), task["id"], data)


def _demo_cases(services: Services) -> list[str]:
    org, discipline = _actor("org_dept"), _actor("discipline")
    vetting = cases.start_case(services, org, "pre_appointment_vetting", "c003",
                               {"proposed_post": "县农业农村局局长", "selection_method": "democratic_recommendation"})
    vetting = _complete(services, vetting, "solicit_family_opinion", opinion="positive", notes="家属支持")
    reviewed = cases.start_case(services, org, "pre_appointment_vetting", "c002",
                                {"proposed_post": "县财政局副局长", "selection_method": "competitive"})
    for element_id in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion"):
        reviewed = _complete(services, reviewed, element_id, opinion="positive")
    reviewed = _complete(services, reviewed, "democratic_evaluation", votes_approve=38, votes_basic=4,
                         votes_disapprove=1)
    today = services.today()  # a timely personal-matters report, shown beside 李娜's org_head_review
    personal_reports.add_report(services, org, "c002", {
        "kind": "property", "event_on": (today - timedelta(days=40)).isoformat(),
        "reported_on": (today - timedelta(days=20)).isoformat(), "summary": "购买自住商品房一套"})
    admonition = cases.start_case(services, discipline, "admonishment", "c004",
                                  {"trigger": "complaint", "summary": "群众反映工作作风拖拉、推诿扯皮"})
    accountability = cases.start_case(services, discipline, "accountability", "c005",
                                      {"source": "hotline", "category": "inaction",
                                       "allegation": "专线举报：项目审批长期不作为"})
    accountability = _complete(services, accountability, "preliminary_verification", founded=True)
    accountability = _complete(services, accountability, "investigation", facts="审批超期 120 天",
                               circumstance="minor", loss="none")
    accountability = _complete(services, accountability, "committee_review", decision="approve")
    audit = cases.start_case(services, org, "departure_audit", "c001",
                             {"departure_reason": "rotation", "planned_departure_on": "2027-03-01"})
    blocked = cases.start_case(services, org, "pre_appointment_vetting", "c005",
                               {"proposed_post": "县住建局局长", "selection_method": "organisation"})
    return [
        "demo cases:",
        f"  #{vetting['id']} vetting of 王强, opinions being gathered",
        f"  #{reviewed['id']} vetting of 李娜, waiting for the org head's review",
        f"  #{admonition['id']} admonishment of 赵敏, waiting for intake review",
        f"  #{accountability['id']} accountability of 刘洋: {accountability['outcome']} (promotion ban 6 months)",
        f"  #{audit['id']} departure audit of 张伟, waiting for the audit team",
        f"  #{blocked['id']} vetting of 刘洋: {blocked['outcome']} ({blocked['data'].get('ineligible_reason')})",
    ]


# Personal-matters reports made late (cadre, days ago, kind, what changed): each opens a 诫勉, and they give
# the early-warning scans below something to find.
LATE_REPORTS = [("c001", 45, "family", "子女在境外定居"), ("c003", 30, "property", "出售住房一套"),
                ("c001", 10, "property", "购买商铺一间")]
HISTORY_WEEKS = 8


def _demo_watch_history(services: Services) -> list[str]:
    """The early-warning scan of each of the last weeks (today's last, so the watch list is today's), so the
    watch list's chart has a history to draw: 张伟 on 关注 then 预警 (his 提醒谈话 opens), 王强 on 关注."""
    org, discipline, today = _actor("org_dept"), _actor("discipline"), services.today()
    for cadre_id, days_ago, kind, summary in LATE_REPORTS:
        reported = today - timedelta(days=days_ago)
        personal_reports.add_report(services, org, cadre_id, {
            "kind": kind, "event_on": (reported - timedelta(days=90)).isoformat(),
            "reported_on": reported.isoformat(), "summary": summary})
    for weeks_ago in range(HISTORY_WEEKS, -1, -1):
        result = early_warning.scan(services, discipline, today - timedelta(weeks=weeks_ago))
    return [f"early warning: {HISTORY_WEEKS + 1} weekly scans; today {result['alert']} alert, "
            f"{result['watch']} watch"]
