"""Every route of the API and the web UI, walked by every role, a user with no role and no login.

The routes come from `app.url_map`, so a new route without a line in ROUTES fails the walk. Each line
says what docs/api.md's need-to-know rules answer: 404 for what the caller may not read (exactly like an
unknown id), 403 for what its roles may not do, and never a 500.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from service.api import is_api_path
from tests.api.support import ACCOUNTABILITY, ADMONISHMENT, DEPARTURE, VETTING, assert_error
from tests.policy.world import CADRE_OF, LONE_CADRE, WALKED, World, reads_cadre, reads_case, roles_of

Expect = Callable[[str, str | None], int | set[int]]  # (user, target) -> the status or statuses allowed
PROCESSES = [VETTING, ACCOUNTABILITY, DEPARTURE, ADMONISHMENT]
CADRES = [*CADRE_OF.values(), LONE_CADRE]
TASK_ROLES = {"org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head", "admin"}
TASK_ROLE_OF = {VETTING: "org_dept", ACCOUNTABILITY: "discipline", DEPARTURE: "audit", ADMONISHMENT: "discipline"}
ASSIGNEE_OF = {DEPARTURE: "audit"}  # the departure audit's fieldwork is assigned to its team lead
LANE_HEAD = {"org_dept": "org_head", "discipline": "discipline_head", "audit": "audit_head"}  # docs/api.md


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {case}, {task}, {cadre}, {attachment} for the target
    expect: Expect
    targets: str = ""  # "case", "task", "cadre", "attachment" or "" (no target)
    body: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the test client's call


def holds(*roles: str) -> Callable[[str], bool]:
    return lambda user: bool(roles_of(user) & {*roles, "admin"})


def by_role(roles: Callable[[str], bool], allowed: int | set[int], refused: int = 403) -> Expect:
    return lambda user, _target: allowed if roles(user) else refused


def reading_case(allowed: int | set[int] = 200) -> Expect:
    return lambda user, process: allowed if reads_case(user, process) else 404


def reading_cadre(allowed: int = 200) -> Expect:
    return lambda user, cadre: allowed if reads_cadre(user, cadre) else 404


def acting_on_task(action: str, allowed: int | set[int], refused: int = 403) -> Expect:
    """404 when the task's case may not be read; else the task's role and holder decide."""
    def expect(user: str, process: str | None) -> int | set[int]:
        if not reads_case(user, process):
            return 404
        admin, holder = user == "admin", ASSIGNEE_OF.get(process)
        has_role, mine = TASK_ROLE_OF[process] in roles_of(user), holder == user
        head = LANE_HEAD.get(TASK_ROLE_OF[process]) in roles_of(user)
        completes = admin or mine or (has_role and holder is None)
        may = {"claim": admin or has_role or mine, "unclaim": admin or mine, "complete": completes,
               "assign": admin or mine or head, "extend": admin or head, "return": completes}[action]
        return allowed if may else refused
    return expect


def messaging(user: str, process: str | None) -> int:
    if not holds("discipline", "org_dept")(user):
        return 403
    return 409 if reads_case(user, process) else 404  # readable: it waits for no objection now


def retrying(user: str, process: str | None) -> int:
    if not holds("designer")(user):
        return 403
    return 409 if reads_case(user, process) else 404  # readable: it has no incident


def starting_in_web(user: str, _target: str | None) -> int:
    if holds("org_dept")(user):
        return 422  # may start vetting: the empty start form is refused
    return 422 if holds("discipline")(user) else 403  # may start something else: told it may not start this


def web_home(user: str, _target: str | None) -> int:
    return 200 if user == "norole" else 302  # the no-role page, or a redirect to the user's first area


ANY_ROLE = by_role(holds(*TASK_ROLES, "designer"), 200)
API_ROUTES: dict[str, Route] = {
    "auth.me": Route("GET", "/api/auth/me", ANY_ROLE),
    "cadres.create": Route("POST", "/api/cadres", by_role(holds("org_dept"), 422), body={"json": {}}),
    "cadres.index": Route("GET", "/api/cadres", by_role(holds(*TASK_ROLES), 200)),
    "cadres.show": Route("GET", "/api/cadres/{cadre}", reading_cadre(), "cadre"),
    "cadres.ledger": Route("GET", "/api/cadres/{cadre}/ledger?kind=integrity", reading_cadre(), "cadre"),
    "cadres.ledger_pdf": Route("GET", "/api/cadres/{cadre}/ledger.pdf?kind=conduct", reading_cadre(), "cadre"),
    "cadres.update": Route("PATCH", "/api/cadres/{cadre}", by_role(holds("org_dept"), 409), "cadre",
                           {"json": {"post": "局长"}}),
    "cycle.add_learning": Route("POST", "/api/cadres/{cadre}/learning", by_role(holds("org_dept"), 422), "cadre",
                                {"json": {}}),
    "cycle.add_personal_report": Route("POST", "/api/cadres/{cadre}/reports", by_role(holds("org_dept"), 422),
                                       "cadre", {"json": {}}),
    # A correction's empty body is refused before its report is looked for (the world has none: 404 after).
    "cycle.correct_personal_report": Route("PATCH", "/api/cadres/{cadre}/reports/999999",
                                           by_role(holds("org_dept"), 422), "cadre", {"json": {}}),
    "cycle.list_learning": Route("GET", "/api/cadres/{cadre}/learning", reading_cadre(), "cadre"),
    "cycle.import_learning": Route("POST", "/api/learning/import", by_role(holds("org_dept"), 422),
                                   body={"data": b"", "content_type": "text/csv"}),
    "cycle.rotation_scan": Route("POST", "/api/rotation-scan", by_role(holds("org_dept"), 200),
                                 body={"json": {"on": "1950-01-01"}}),  # a day nothing is due on
    "cycle.early_warning_scan": Route("POST", "/api/early-warning-scan",
                                      by_role(holds("discipline", "discipline_head"), 200),
                                      body={"json": {"on": "1950-01-01"}}),  # a day nothing is due on
    "cycle.watchlist": Route("GET", "/api/watchlist", by_role(holds("discipline", "discipline_head", "org_head"), 200)),
    "cycle.watch_history": Route("GET", "/api/watchlist/history",
                                 by_role(holds("discipline", "discipline_head", "org_head"), 200)),
    "integrity_api.open_reports": Route("POST", "/api/integrity-reports", by_role(holds("org_dept"), 422),
                                        body={"json": {"year": 1999}}),
    "integrity_api.staff_list": Route("GET", "/api/disclosures", by_role(holds(*TASK_ROLES), 200)),
    "integrity_api.staff_get": Route("GET", "/api/disclosures/999999", lambda user, _: 404),
    "cases.start": Route("POST", "/api/cases", by_role(holds("org_dept"), 422),
                         body={"json": {"process": VETTING, "cadre_id": LONE_CADRE, "data": {}}}),
    "cases.index": Route("GET", "/api/cases", by_role(holds(*TASK_ROLES), 200)),
    "cases.show": Route("GET", "/api/cases/{case}", reading_case(), "case"),
    "cases.history": Route("GET", "/api/cases/{case}/history", reading_case(), "case"),
    "cases.diagram": Route("GET", "/api/cases/{case}/diagram", reading_case(), "case"),
    "cases.documents_index": Route("GET", "/api/cases/{case}/documents", reading_case(), "case"),
    # No case of the world has reached a document yet: 404 for readers too (tests/api/test_documents.py reads them).
    "cases.document": Route("GET", "/api/cases/{case}/documents/vetting_notice.pdf", reading_case(404), "case"),
    "cases.cancel": Route("POST", "/api/cases/{case}/cancel", by_role(holds(), 422), "case", {"json": {"reason": ""}}),
    "cases.migrate": Route("POST", "/api/cases/{case}/migrate?dry_run=1", by_role(holds(), 409), "case"),
    "cases.retry": Route("POST", "/api/cases/{case}/retry", retrying, "case"),
    "cases.message": Route("POST", "/api/messages", messaging, "case",
                           {"json": {"name": "vetting_objection", "case_id": "{case}", "data": {}}}),
    "processes.index": Route("GET", "/api/processes", ANY_ROLE),
    "processes.show": Route("GET", f"/api/processes/{VETTING}", ANY_ROLE),
    "processes.bpmn": Route("GET", f"/api/processes/{VETTING}/bpmn", ANY_ROLE),
    "processes.diff": Route("GET", f"/api/processes/{VETTING}/versions/1/diff?against=1", ANY_ROLE),
    "processes.export": Route("GET", f"/api/processes/{VETTING}/versions/1/export", ANY_ROLE),
    "processes.deploy": Route("POST", f"/api/processes/{VETTING}/versions", by_role(holds("designer"), 422),
                              body={"data": b"<x/>", "content_type": "application/xml"}),
    "processes.validate": Route("POST", f"/api/processes/{VETTING}/validate", by_role(holds("designer"), 422),
                                body={"data": b"<x/>", "content_type": "application/xml"}),
    "processes.migrate": Route("POST", f"/api/processes/{VETTING}/migrate?dry_run=1",  # counts only, no case
                               by_role(holds("designer"), 200)),
    "tasks.inbox": Route("GET", "/api/tasks", by_role(holds(*TASK_ROLES), 200)),
    "tasks.show": Route("GET", "/api/tasks/{task}", reading_case(), "task"),
    "tasks.claim": Route("POST", "/api/tasks/{task}/claim", acting_on_task("claim", {200, 409}), "task"),
    "tasks.unclaim": Route("POST", "/api/tasks/{task}/unclaim", acting_on_task("unclaim", 200), "task"),
    "tasks.complete": Route("POST", "/api/tasks/{task}/complete", acting_on_task("complete", 422), "task",
                            {"json": {"data": {}}}),
    "tasks.assign": Route("POST", "/api/tasks/{task}/assign", acting_on_task("assign", 422), "task",
                          {"json": {"username": "nobody_by_that_name"}}),
    "tasks.extend": Route("POST", "/api/tasks/{task}/extend", acting_on_task("extend", 422), "task",
                          {"json": {"until": "not a date", "reason": "x"}}),
    "tasks.send_back": Route("POST", "/api/tasks/{task}/return", acting_on_task("return", 409), "task",
                             {"json": {"reason": "退回"}}),  # no shipped task is marked allowReturn
    "absence.show": Route("GET", "/api/me/substitute", lambda user, _: 200),
    "absence.set_substitute": Route("PUT", "/api/me/substitute", lambda user, _: 422, body={"json": {}}),
    "absence.end": Route("DELETE", "/api/me/substitute", lambda user, _: 204),
    "access_log.index": Route("GET", "/api/access-log", by_role(holds("discipline_head"), 200)),
    "account_log.index": Route("GET", "/api/account-log", by_role(holds("discipline_head"), 200)),
    "auth.password": Route("POST", "/api/auth/password", lambda user, _: 422, body={"json": {}}),
    "auth.logout": Route("DELETE", "/api/auth/token", lambda user, _: 204),  # each user ends its own token
    "cases.signal": Route("POST", "/api/signals", by_role(holds("designer"), 202),
                          body={"json": {"name": "nobody_waits_for_this"}}),
    "cycle.bulk_start": Route("POST", "/api/bulk-starts", by_role(holds("org_dept"), 202),
                              body={"json": {"process": VETTING, "filter": "False"}}),
    "cycle.bulk_start_progress": Route("GET", "/api/bulk-starts/999999", lambda user, _: 404),
    "cycle.bulk_start_cancel": Route("POST", "/api/bulk-starts/999999/cancel", lambda user, _: 404),
    "users.index": Route("GET", "/api/users", by_role(holds(), 200)),
    "users.create": Route("POST", "/api/users", by_role(holds(), 422), body={"json": {}}),
    "users.update": Route("PATCH", "/api/users/audit2", by_role(holds(), {200, 422}), body={"json": {}}),
    # Roles and who may start each process are data only admins manage (writes that change nothing here).
    "roles.index": Route("GET", "/api/roles", by_role(holds(), 200)),
    "roles.create": Route("POST", "/api/roles", by_role(holds(), 422), body={"json": {}}),
    "roles.update": Route("PUT", "/api/roles/committee", by_role(holds(), 200), body={"json": {}}),
    "roles.starters": Route("GET", f"/api/processes/{VETTING}/starters", by_role(holds(), 200)),
    "roles.set_starters": Route("PUT", f"/api/processes/{VETTING}/starters", by_role(holds(), 200),
                                body={"json": {"roles": ["org_dept"]}}),
    # Notifications are the caller's own: every account with a role reads and marks its own, no one else's.
    "notifications.index": Route("GET", "/api/notifications", lambda user, _: 200),
    "notifications.read": Route("POST", "/api/notifications/999999/read", lambda user, _: 404),
    "notifications.read_all": Route("POST", "/api/notifications/read-all", lambda user, _: 200),
    "notifications.my_mail": Route("GET", "/api/me/mail", lambda user, _: 200),
    # Working on cases: files and remarks go with reading the case.
    "casework.attach": Route("POST", "/api/cases/{case}/attachments", reading_case(422), "case",
                             {"data": {}, "content_type": "multipart/form-data"}),
    "casework.list_attachments": Route("GET", "/api/cases/{case}/attachments", reading_case(), "case"),
    "casework.download": Route("GET", "/api/attachments/{attachment}", reading_case(), "attachment"),
    "casework.comment": Route("POST", "/api/cases/{case}/comments", reading_case(422), "case", {"json": {}}),
    "casework.list_comments": Route("GET", "/api/cases/{case}/comments", reading_case(), "case"),
    "notifications.change_my_mail": Route("PATCH", "/api/me/mail", lambda user, _: 422,
                                          body={"json": {"email": "not an address"}}),
}
NO_ROLE_NEEDED = {"/api/auth/password", "/api/auth/token"}  # every account may change its password, log out
WEB_ROUTES: dict[str, Route] = {
    "web_auth.home": Route("GET", "/", web_home),
    "admin.index": Route("GET", "/admin/users", by_role(holds(), 200)),
    "admin.create": Route("POST", "/admin/users", by_role(holds(), 302), body={"data": {}}),
    "admin.active": Route("POST", "/admin/users/audit2/active", by_role(holds(), 302), body={"data": {}}),
    "admin.roles": Route("POST", "/admin/users/audit2/roles", by_role(holds(), 302), body={"data": {}}),
    "admin_roles.index": Route("GET", "/admin/roles", by_role(holds(), 200)),
    "admin_roles.create": Route("POST", "/admin/roles", by_role(holds(), 302), body={"data": {}}),
    "admin_roles.update": Route("POST", "/admin/roles/committee", by_role(holds(), 302), body={"data": {}}),
    "admin_roles.starters": Route("POST", f"/admin/processes/{VETTING}/starters", by_role(holds(), 302),
                                  body={"data": {"roles": "org_dept"}}),
    "cadre_pages.index": Route("GET", "/cadres", by_role(holds(*TASK_ROLES), 200)),
    "cadre_pages.show": Route("GET", "/cadres/{cadre}", reading_cadre(), "cadre"),
    "dashboard.watchlist": Route("GET", "/watchlist", by_role(holds("discipline", "discipline_head", "org_head"), 200)),
    "cadre_pages.ledger_pdf": Route("GET", "/cadres/{cadre}/ledger.pdf?kind=conduct", reading_cadre(), "cadre"),
    "cadre_pages.picker": Route("GET", "/search/cadres", by_role(holds(*TASK_ROLES), 200)),
    "cadre_pages.new": Route("POST", "/cadres/new", by_role(holds("org_dept"), 422), body={"data": {}}),
    "cadre_pages.add_report": Route("POST", "/cadres/{cadre}/reports", by_role(holds("org_dept"), 422), "cadre",
                                    {"data": {}}),
    "cadre_pages.correct_report": Route("POST", "/cadres/{cadre}/reports/999999/correct",
                                        by_role(holds("org_dept"), 404), "cadre", {"data": {}}),  # unknown
    "case_pages.index": Route("GET", "/cases", by_role(holds(*TASK_ROLES), 200)),
    "case_pages.export": Route("GET", "/cases.csv", by_role(holds(*TASK_ROLES), 200)),
    "case_pages.show": Route("GET", "/cases/{case}", reading_case(), "case"),
    "case_pages.document": Route("GET", "/cases/{case}/documents/vetting_notice.pdf", reading_case(404), "case"),
    "case_pages.cancel": Route("POST", "/cases/{case}/cancel", by_role(holds(), 302), "case", {"data": {}}),
    "case_pages.attach": Route("POST", "/cases/{case}/attachments", reading_case(302), "case",
                               {"data": {}, "content_type": "multipart/form-data"}),  # refusals are flashed
    "case_pages.download": Route("GET", "/attachments/{attachment}", reading_case(), "attachment"),
    "case_pages.comment": Route("POST", "/cases/{case}/comments", reading_case(302), "case", {"data": {}}),
    "case_pages.new": Route("POST", "/cases/new", starting_in_web,
                            body={"data": {"process": VETTING, "cadre_id": LONE_CADRE}}),
    "dashboard.index": Route("GET", "/dashboard", by_role(holds("discipline", "discipline_head", "org_head"), 200)),
    "designer.index": Route("GET", "/designer", by_role(holds("designer"), 200)),
    "designer.edit": Route("GET", f"/designer/{VETTING}/edit", by_role(holds("designer"), 200)),
    "designer.version": Route("GET", f"/designer/{VETTING}/versions/1", by_role(holds("designer"), 200)),
    "designer.download": Route("GET", f"/designer/{VETTING}/versions/1.bpmn", by_role(holds("designer"), 200)),
    "designer.deploy": Route("POST", f"/designer/{VETTING}/deploy", by_role(holds("designer"), 400),
                             body={"data": {"bpmn": ""}}),
    "designer.validate": Route("POST", f"/designer/{VETTING}/validate", by_role(holds("designer"), 400),
                               body={"data": {"bpmn": ""}}),
    "designer.new": Route("POST", "/designer/new", by_role(holds("designer"), 422), body={"data": {}}),
    "designer.form_preview": Route("POST", "/designer/form-preview", by_role(holds("designer"), 200),
                                   body={"data": {"schema": "{}"}}),
    "design_versions.diff": Route("GET", f"/designer/{VETTING}/diff", by_role(holds("designer"), 200)),
    "design_versions.migrate_form": Route("GET", f"/designer/{VETTING}/migrate", by_role(holds("designer"), 200)),
    "design_versions.migrate": Route("POST", f"/designer/{VETTING}/migrate", by_role(holds("designer"), 200),
                                     body={"data": {"to": "", "action": "dry_run"}}),
    "integrity_pages.staff_index": Route("GET", "/integrity-reports", by_role(holds(*TASK_ROLES), 200)),
    "integrity_pages.staff_show": Route("GET", "/integrity-reports/999999", by_role(holds(*TASK_ROLES), 404)),
    "integrity_pages.open_year": Route("POST", "/integrity-reports/open", by_role(holds("org_dept"), 303),
                                       body={"data": {"year": "1999"}}),
    "inbox.index": Route("GET", "/inbox", by_role(holds(*TASK_ROLES), 200)),
    "portal_staff.index": Route("GET", "/reports", by_role(holds("discipline", "discipline_head"), 200)),
    # Only public reports have a report file: the world's other cases are 404 to the discipline roles.
    "portal_staff.show": Route("GET", "/reports/{case}", by_role(holds("discipline", "discipline_head"), 404),
                               "case"),
    "inbox.show": Route("GET", "/tasks/{task}", reading_case(), "task"),
    "inbox.claim": Route("POST", "/tasks/{task}/claim", reading_case(302), "task"),  # refusals are flashed
    "inbox.unclaim": Route("POST", "/tasks/{task}/unclaim", reading_case(302), "task"),
    "inbox.assign": Route("POST", "/tasks/{task}/assign", reading_case(302), "task", {"data": {}}),
    "inbox.extend": Route("POST", "/tasks/{task}/extend", reading_case(302), "task", {"data": {}}),
    "inbox.send_back": Route("POST", "/tasks/{task}/return", reading_case(302), "task", {"data": {}}),
    "absence_pages.show": Route("GET", "/account/absence", by_role(holds(*TASK_ROLES, "designer"), 200)),
    "absence_pages.set_absence": Route("POST", "/account/absence", by_role(holds(*TASK_ROLES, "designer"), 302),
                                       body={"data": {}}),
    "absence_pages.end": Route("POST", "/account/absence/end", by_role(holds(*TASK_ROLES, "designer"), 302),
                               body={"data": {}}),
    "inbox.complete": Route("POST", "/tasks/{task}/complete", acting_on_task("complete", 422), "task",
                            {"data": {}}),
    "access_log_pages.index": Route("GET", "/access-log", by_role(holds("discipline_head"), 200)),
    "account_log_pages.index": Route("GET", "/account-log", by_role(holds("discipline_head"), 200)),
    "web_auth.password": Route("GET", "/account/password", lambda user, _: 200),
    "admin.password": Route("POST", "/admin/users/audit2/password", by_role(holds(), 302), body={"data": {}}),
    "admin.mail": Route("POST", "/admin/users/audit2/mail", by_role(holds(), 302), body={"data": {}}),
    "notification_pages.index": Route("GET", "/notifications", lambda user, _: 200),
    "notification_pages.open_one": Route("POST", "/notifications/999999/open", lambda user, _: 404),
    "notification_pages.read": Route("POST", "/notifications/999999/read", lambda user, _: 404),
    "notification_pages.read_all": Route("POST", "/notifications/read-all", lambda user, _: 302),
    "notification_pages.mail_settings": Route("POST", "/account/mail", lambda user, _: 302, body={"data": {}}),
}
# Pages anyone reaches, logged in or not: (method, path, body, status).
PUBLIC: dict[str, tuple[str, str, dict[str, Any], int | set[int]]] = {
    "web_auth.login": ("POST", "/login", {"data": {"username": "admin", "password": "wrong"}}, {401, 429}),
    "web_auth.switch_language": ("POST", "/lang", {"data": {"lang": "zh"}}, 302),
    "web_auth.static": ("GET", "/assets/style.css", {}, 200),
    "static": ("GET", "/static/nothing.css", {}, 404),
    "auth.token": ("POST", "/api/auth/token", {"json": {}}, 422),
    "api_docs.openapi": ("GET", "/api/openapi.json", {}, 200),  # the API's description is not confidential
    "api_docs.page": ("GET", "/api/docs", {}, 200),
    "health.alive": ("GET", "/api/health", {}, 200),  # a load balancer's checks: "ok" or "failed", no more
    "health.ready": ("GET", "/api/ready", {}, 200),
    "disclosures_public_api.public_list": ("GET", "/public/disclosures", {}, 200),
    "disclosures_public_api.public_get": ("GET", "/public/disclosures/999999", {}, 404),
    "disclosures_public_api.rate": ("POST", "/public/disclosures/999999/ratings",
                                    {"json": {"rating": "satisfied"}}, 404),
    "public_disclosures.index": ("GET", "/disclosures", {}, 200),
    "public_disclosures.show": ("GET", "/disclosures/999999", {}, 404),
    "public_disclosures.rate": ("POST", "/disclosures/999999", {"data": {"rating": "satisfied"}}, 404),
    # The public portal (no login): the same answer for everyone. POSTs without a solved proof of work
    # are refused (400), or counted past the per-address limit (429).
    "public_api.challenge": ("GET", "/public/challenge", {}, 200),
    "public_api.notices": ("GET", "/public/notices", {}, 200),
    "public_api.track": ("GET", "/public/reports/JBNOSUCHCODE?key=x", {}, 404),
    "public_api.submit_report": ("POST", "/public/reports", {"json": {}}, {400, 429}),
    "public_api.object_to_notice": ("POST", "/public/notices/1/objections", {"json": {}}, {400, 429}),
    "portal.report_form": ("GET", "/report", {}, 200),
    "portal.track": ("GET", "/report/track", {}, 200),
    "portal.track_report": ("POST", "/report/track", {"data": {"code": "JBNOSUCHCODE", "key": "x"}}, 404),
    "portal.notices": ("GET", "/notices", {}, 200),
    "portal.static": ("GET", "/portal-static/portal.js", {}, 200),
    "portal.submit_report": ("POST", "/report", {"data": {}}, {400, 429}),
    "portal.object_to_notice": ("POST", "/notices/1/objections", {"data": {}}, {400, 429}),
    "web_auth.logout": ("POST", "/logout", {}, 302),
}
GET_TWINS = {"cadre_pages.new": ("/cadres/new", by_role(holds("org_dept"), 200)),
             "case_pages.new": ("/cases/new", by_role(holds("org_dept", "discipline"), 200)),
             "designer.new": ("/designer/new", by_role(holds("designer"), 200))}


def targets(world: World, kind: str) -> list[tuple[str | None, dict[str, str]]]:
    """(target, placeholders) for each resource of a kind: every case, task or cadre of the world."""
    if kind == "case":
        return [(p, {"case": str(world.cases[p])}) for p in PROCESSES]
    if kind == "task":
        return [(p, {"task": world.tasks[p]}) for p in PROCESSES]
    if kind == "cadre":
        return [(c, {"cadre": c}) for c in CADRES]
    if kind == "attachment":
        return [(p, {"attachment": str(world.attachments[p])}) for p in PROCESSES]
    return [(None, {})]


def status(world: World, app: Any, user: str | None, route: Route, values: dict[str, str]) -> int:
    """The status of the route called as `user` (None: not logged in) with the target's ids."""
    path = route.path.format(**values)
    body = _fill(route.body, values)
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {world.template.tokens[user]}"} if user else {}
        response = app.test_client().open(path, method=route.method, headers=headers, **body)
    else:
        response = world.web(app, user).open(path, method=route.method, **body)
    response.close()
    return response.status_code


def _fill(body: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Put the target's id into a JSON body (`"{case}"` becomes the case id, a number)."""
    if "json" not in body or not values.get("case"):
        return body
    return {**body, "json": {k: int(values["case"]) if v == "{case}" else v for k, v in body["json"].items()}}


def expected(route: Route, user: str | None, target: str | None) -> int | set[int]:
    if user is None:
        return 401 if route.path.startswith("/api/") else 302  # to the login page
    reads_record = route.method == "GET" and bool(route.targets)  # as an unknown id (404), as in the web UI
    if user == "norole" and route.path.startswith("/api/") and route.path not in NO_ROLE_NEEDED and not reads_record:
        return 403  # an account with no role may do nothing else over the API
    return route.expect(user, target)


def walk(world: World, app: Any, endpoint: str, route: Route) -> list[str]:
    """Call the route as every user on every target; the differences from what the policy says."""
    problems = []
    for target, values in targets(world, route.targets):
        for user in [*WALKED, None]:
            want = expected(route, user, target)
            got = status(world, app, user, route, values)
            if got not in (want if isinstance(want, set) else {want}):
                problems.append(f"{endpoint} {route.method} {route.path} as {user} on {target}: {got}, want {want}")
    return problems


def test_every_route_is_in_the_table(world):
    """A route of app.url_map without a line here fails: nobody decided who may use it."""
    app = world.app(world.folder.parent / "url_map")
    try:
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert sorted(endpoints - set(API_ROUTES) - set(WEB_ROUTES) - set(PUBLIC)) == []


def test_reading_routes_answer_what_the_policy_says(world, tmp_path):
    """Every GET route, as every user on every case, task and cadre: 200, 403 or 404 as docs/api.md says."""
    app = world.app(tmp_path / "reads")
    try:
        problems = [problem for endpoint, route in {**API_ROUTES, **WEB_ROUTES}.items() if route.method == "GET"
                    for problem in walk(world, app, endpoint, route)]
        for endpoint, (path, expect) in GET_TWINS.items():
            problems += walk(world, app, endpoint, Route("GET", path, expect))
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert problems == [], "\n".join(problems)


WRITES = sorted(endpoint for endpoint, route in {**API_ROUTES, **WEB_ROUTES}.items() if route.method != "GET")


@pytest.mark.parametrize("endpoint", WRITES)
def test_writing_routes_answer_what_the_policy_says(world, tmp_path, endpoint):
    """A writing route on a fresh copy of the world, as every user: 404 unreadable, 403 refused, else its answer."""
    route = {**API_ROUTES, **WEB_ROUTES}[endpoint]
    app = world.app(tmp_path / "writes")
    try:
        assert walk(world, app, endpoint, route) == []
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_public_routes_answer_alike_with_and_without_login(world, tmp_path):
    """Login, language, assets, token: the same answer for every user and for nobody (logout last)."""
    app = world.app(tmp_path / "public")
    try:
        problems = []
        for endpoint, (method, path, body, want) in PUBLIC.items():
            route = Route(method, path, lambda _user, _target, w=want: w, body=body)
            for user in [*WALKED, None]:
                got = status(world, app, user, route, {})
                if got not in (want if isinstance(want, set) else {want}):
                    problems.append(f"{endpoint} as {user}: {got}, want {want}")
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert problems == [], "\n".join(problems)


INT_ARGUMENT = re.compile(r"<int(?:\([^)]*\))?:(\w+)>")
OTHER_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?(\w+)>")
LARGEST_ID = 2**31 - 1  # the id columns are INTEGER: 32 bits on PostgreSQL (a larger id there: DataError, a 500)
PAST_THE_COLUMNS = (str(10**23), str(2**63), str(2**31))  # SQLite's driver raises OverflowError past 2**63 - 1


def with_id(rule: str, number: str) -> str:
    """A rule's path with `number` for each int argument and a harmless value for any other."""
    path = INT_ARGUMENT.sub(number, rule)
    return OTHER_ARGUMENT.sub(lambda match: VETTING if match.group(1) == "key" else "x", path)


def test_a_huge_id_is_unknown_on_every_route_with_a_number(world, tmp_path):
    """Every route of app.url_map with an int argument: an id past what the id columns hold is a 404 like an
    unknown id (its converter's max: not SQLite's OverflowError or PostgreSQL's DataError and a 500, nor a
    405 where another method serves the path), and the largest id is no 500 either; as admin, discipline and
    nobody, by GET and by POST with a small JSON body."""
    app = world.app(tmp_path / "huge")
    try:
        rules = [rule for rule in app.url_map.iter_rules() if INT_ARGUMENT.search(rule.rule)]
        assert {"public_api.object_to_notice", "portal.object_to_notice", "portal_staff.show"} <= {
            rule.endpoint for rule in rules}
        unbounded = [rule.rule for rule in rules for bound in re.findall(r"<int(?:\(max=(\d+)\))?:", rule.rule)
                     if not bound or int(bound) > LARGEST_ID]
        assert unbounded == []  # on SQLite a bound past the columns passes the walk below; on PostgreSQL a 500
        problems = []
        for rule in rules:
            for method in sorted(rule.methods & {"GET", "POST"}):
                body = {"json": {"x": 1}} if method == "POST" else {}
                for user in ("admin", "discipline", None):
                    for number in (*PAST_THE_COLUMNS, str(LARGEST_ID)):
                        route = Route(method, with_id(rule.rule, number), lambda _user, _target: 404, body=body)
                        got = status(world, app, user, route, {})
                        if got >= 500 or (number in PAST_THE_COLUMNS and got != 404):
                            problems.append(f"{rule.endpoint} {method} {route.path} as {user}: {got}")
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert problems == [], "\n".join(problems)


# (user, method, path, body, status) with numbers past the id columns in a query string or a JSON body.
HUGE_NUMBERS = [
    ("admin", "GET", "/api/cases?q=99999999999", {}, 200),  # a case number that no case has
    ("admin", "GET", "/cases?q=%2399999999999", {}, 200),
    ("admin", "GET", "/api/tasks?case_id=3000000000", {}, 400),
    ("discipline_head", "GET", "/api/access-log?case_id=3000000000", {}, 400),
    ("discipline_head", "GET", "/api/account-log?page=3000000000", {}, 400),
    ("discipline_head", "GET", "/access-log?case_id=3000000000", {}, 200),  # no such filter, like a non-number
    ("discipline", "POST", "/api/messages", {"json": {"name": "vetting_objection", "case_id": 3_000_000_000}}, 404),
    ("admin", "GET", f"/api/processes/{VETTING}/bpmn?version=2147483648", {}, 400),
    ("admin", "GET", f"/api/processes/{VETTING}/versions/1/diff?against=2147483648", {}, 400),
    ("admin", "GET", f"/integrity-reports?year={10**23}", {}, 200),  # every year, like a year that is no number
]


def test_huge_numbers_in_queries_and_bodies_are_no_500(world, tmp_path):
    """A number past the id columns in a search, a filter or a JSON body: 400, 404, 422 or ignored, never a 500."""
    app = world.app(tmp_path / "numbers")
    try:
        problems = []
        for user, method, path, body, want in HUGE_NUMBERS:
            got = status(world, app, user, Route(method, path, lambda _user, _target: 0, body=body), {})
            if got != want:
                problems.append(f"{user} {method} {path}: {got}, want {want}")
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert problems == []


def test_every_post_without_login_refuses_a_body_over_a_megabyte(world, tmp_path):
    """docs/api.md: bodies over PUBLIC_MAX_BODY (1 MB) are 413 on every POST anyone may make without logging
    in (the portal, 述职述廉 ratings, login, token, language), JSON errors under /public and /api."""
    app = world.app(tmp_path / "bodies")
    try:
        problems = []
        for endpoint, (method, path, _body, _want) in PUBLIC.items():
            if method != "POST":
                continue
            padding = {"content": "举" * 400_000}  # 1.2 MB of UTF-8
            response = app.test_client().post(path, **({"json": padding} if is_api_path(path) else {"data": padding}))
            response.close()
            if response.status_code != 413:
                problems.append(f"{endpoint} POST {path}: {response.status_code}")
            elif is_api_path(path):
                assert_error(response, 413)
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert problems == [], "\n".join(problems)


def _some_path(rule: Any) -> str:
    """A concrete path of a URL rule: numbers for converters that want one, a word for the others."""
    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
                  lambda m: "1" if m.group(1) in ("int", "float") else "x", rule.rule)


def test_nobody_logged_in_sends_more_than_a_megabyte_to_any_route(world, tmp_path):
    """Every route that takes a body, and a route that does not exist, refuses a stranger's 1.2 MB multipart
    form (no login, or a made-up token) with 413 before any check parses it: only a signed-in caller may send an
    attachment's or a process's size."""
    app = world.app(tmp_path / "strangers")
    # A 1.2 MB file part: under MAX_CONTENT_LENGTH and the form parser's own limits (which bound text fields, not
    # files), over PUBLIC_MAX_BODY. Encoded once, so no request of the test client spools it to disk.
    boundary, body = encode_multipart(MultiDict({"file": FileStorage(io.BytesIO(b"\x00" * 1_200_000), "big.bin")}))
    try:
        problems = []
        targets = [(method, _some_path(rule)) for rule in app.url_map.iter_rules()
                   for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})]
        for method, path in [*targets, ("POST", "/api/no/such/route"), ("POST", "/no/such/page")]:
            for headers in ({}, {"Authorization": "Bearer made-up"}):
                response = app.test_client().open(path, method=method, data=body, headers=headers,
                                                  content_type=f"multipart/form-data; boundary={boundary}")
                response.close()
                if response.status_code != 413:
                    problems.append(f"{method} {path} {headers}: {response.status_code}")
        assert len(targets) > 50  # the whole URL map was walked
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert problems == [], "\n".join(problems)
