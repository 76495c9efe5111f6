"""A small world for the need-to-know tests: cadres, cases of four processes, and who may read what.

Built once per session on a copy of the API tests' template (users and tokens made already), with
every walked user logged in to the web UI too, then copied for each test that changes it. The
expectations here restate docs/api.md's "Who may read what" on their own, so a policy bug shows as a
difference instead of being copied into the test.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from service import create_app
from tests.api.support import (
    ACCOUNTABILITY,
    ADMONISHMENT,
    DEPARTURE,
    VETTING,
    CaseApi,
    Template,
    app_from_template,
    departure_to_fieldwork,
    make_api,
    start_accountability,
    start_admonishment,
    start_vetting,
)
from tests.conftest import PASSWORD, ROLES, copy_database, make_settings, seal_database

WALKED = [*ROLES, "norole"]  # every role's user and a user with no role (plus, separately, no login)
EVERY_CASE = {"admin", "discipline", "discipline_head"}
EVERY_CADRE = EVERY_CASE | {"org_dept", "org_head", "committee"}
CADRES_OF_THEIR_CASES = {"audit", "audit_head"}
LANES = {
    VETTING: {"org_dept", "org_head", "committee", "discipline"},
    ACCOUNTABILITY: {"discipline", "discipline_head", "committee"},
    DEPARTURE: {"org_dept", "audit", "audit_head"},
    ADMONISHMENT: {"discipline", "discipline_head"},
}
# Who the world makes take part in each case (they all hold a lane role of it, except where a test adds one).
PARTICIPANTS = {VETTING: {"org_dept"}, ACCOUNTABILITY: {"discipline"}, DEPARTURE: {"org_dept", "audit_head", "audit"},
                ADMONISHMENT: {"discipline"}}
CADRE_OF = {VETTING: "cv", ACCOUNTABILITY: "ca", DEPARTURE: "cd", ADMONISHMENT: "cm"}
LONE_CADRE = "cx"  # a cadre with no case at all
FIRST_TASK = {VETTING: "solicit_family_opinion", ACCOUNTABILITY: "preliminary_verification",
              DEPARTURE: "audit_fieldwork", ADMONISHMENT: "intake_review"}


def roles_of(user: str) -> set[str]:
    return set() if user == "norole" else {user}


def reads_case(user: str, process: str) -> bool:
    """docs/api.md: every case for admin, discipline, discipline_head; else a lane of its process or taking part."""
    roles = roles_of(user)
    if not roles:
        return False
    return bool(roles & EVERY_CASE or roles & LANES[process] or user in PARTICIPANTS[process])


def reads_cadre(user: str, cadre_id: str) -> bool:
    """docs/api.md: every cadre for the oversight roles; audit roles only the cadres of cases they may read."""
    roles = roles_of(user)
    if roles & EVERY_CADRE:
        return True
    if roles & CADRES_OF_THEIR_CASES:
        return any(reads_case(user, process) for process, cadre in CADRE_OF.items() if cadre == cadre_id)
    return False


@dataclass(frozen=True)
class World:
    folder: Path
    template: Template
    cases: dict[str, int]  # process -> case id
    tasks: dict[str, str]  # process -> id of an open task of its case
    cookies: dict[str, str]  # username -> web session cookie
    attachments: dict[str, int]  # process -> id of a file attached to its case

    def app(self, folder: Path) -> Flask:
        """An app on a fresh copy of the world's database, CSRF off (tested elsewhere)."""
        folder.mkdir(parents=True, exist_ok=True)
        copy_database(self.folder, folder)
        app = create_app(make_settings(folder, ATTACHMENT_STORE=str(self.folder / "attachments")))
        app.config["WTF_CSRF_ENABLED"] = False
        return app

    def api(self, app: Flask) -> CaseApi:
        return make_api(app, self.template)

    def web(self, app: Flask, user: str | None) -> Any:
        """A browser-like client, logged in as `user` (None: not logged in)."""
        client = app.test_client()
        if user is not None:
            client.set_cookie("session", self.cookies[user])
        return client


def build_world(template: Template, folder: Path) -> World:
    app = app_from_template(template, folder)
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        api = make_api(app, template)
        for cadre_id in [*CADRE_OF.values(), LONE_CADRE]:
            api.create_cadre(cadre_id)
        cases = {VETTING: start_vetting(api, CADRE_OF[VETTING])["id"],
                 ACCOUNTABILITY: start_accountability(api, CADRE_OF[ACCOUNTABILITY])["id"],
                 DEPARTURE: departure_to_fieldwork(api, CADRE_OF[DEPARTURE], team_lead="audit"),
                 ADMONISHMENT: start_admonishment(api, CADRE_OF[ADMONISHMENT])["id"]}
        tasks = {process: api.open_task(case_id, FIRST_TASK[process])["id"] for process, case_id in cases.items()}
        cookies = {user: _web_login(app, user) for user in WALKED}
        attachments = {process: _attach(api, case_id) for process, case_id in cases.items()}
    finally:
        app.extensions["cadreflow"].db.dispose()
    seal_database(folder)
    return World(folder, template, cases, tasks, cookies, attachments)


def _attach(api: CaseApi, case_id: int) -> int:
    """A text file on the case, added by an admin (who takes part in nothing by it)."""
    response = api.post(f"/api/cases/{case_id}/attachments", data={"file": (io.BytesIO("材料".encode()), "a.txt")},
                        content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["id"]


def _web_login(app: Flask, user: str) -> str:
    client = app.test_client()
    response = client.post("/login", data={"username": user, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client.get_cookie("session").value
