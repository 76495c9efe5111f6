"""Fast fixtures for API and service tests, and helpers that drive the shipped processes.

Hashing passwords and issuing tokens costs about a second per test, so the users (one per role
plus a few extras) and their tokens are made once per session in a template database; each
test gets its own copy of that file and an `Api` that already holds every token.
"""

from __future__ import annotations

import calendar
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service import create_app
from service.errors import CaseIncident
from service.usecases.casehistory import lock_case
from service.usecases.context import Services
from service.usecases.stepper import hold_as_incident
from service.usecases.timers import fire_due_timers
from tests.conftest import FAST_DEADLINES, ROLES, Api, copy_database, make_settings, seed_database

# Every role's user (named after the role) and a few more for claims, assignment and role checks.
USERS: dict[str, list[str]] = {
    **{role: [role] for role in ROLES},
    "audit2": ["audit"],
    "org_dept2": ["org_dept"],
    "discipline2": ["discipline"],
    "multi": ["discipline", "audit"],
    "norole": [],
}
VETTING = "pre_appointment_vetting"
ADMONISHMENT = "admonishment"
DEPARTURE = "departure_audit"
ACCOUNTABILITY = "accountability"
OPINION_TASKS = ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion")
STEP2_TASKS = {*OPINION_TASKS, "democratic_evaluation"}
TIMER_WAIT = 1.1  # past a PT1S deadline


@dataclass(frozen=True)
class Template:
    folder: Path
    tokens: dict[str, str]


def build_template(folder: Path) -> Template:
    return Template(folder, seed_database(folder, USERS, tokens=True))


def app_from_template(template: Template, folder: Path, **overrides: Any) -> Flask:
    folder.mkdir(parents=True, exist_ok=True)
    copy_database(template.folder, folder)
    return create_app(make_settings(folder, **overrides))


class CaseApi(Api):
    """The shared `Api` with a few more reads, its tokens made in advance."""

    def case(self, case_id: int) -> dict:
        response = self.get(f"/api/cases/{case_id}")
        assert response.status_code == 200, response.json
        return response.json

    def cadre(self, cadre_id: str = "c1") -> dict:
        response = self.get(f"/api/cadres/{cadre_id}")
        assert response.status_code == 200, response.json
        return response.json

    def history(self, case_id: int) -> list[dict]:
        response = self.get(f"/api/cases/{case_id}/history")
        assert response.status_code == 200, response.json
        return response.json

    def inbox(self, as_: str, **params: Any) -> list[dict]:
        response = self.get("/api/tasks", as_=as_, query_string=params)
        assert response.status_code == 200, response.json
        return response.json

    def open_elements(self, case_id: int) -> list[str]:
        return sorted(t["element_id"] for t in self.case(case_id)["open_tasks"])

    def complete_raw(self, task_id: str, as_: str, data: Any) -> Any:
        return self.post(f"/api/tasks/{task_id}/complete", as_=as_, json={"data": data})


def make_api(app: Flask, template: Template) -> CaseApi:
    api = CaseApi(app.test_client())
    api.tokens.update(template.tokens)
    return api


def own_app(template: Template, folder: Path, **overrides: Any) -> Iterator[Flask]:
    """An app on a copy of the template with settings `overrides`, its database closed after its fixture: for a
    fixture `yield from own_app(...)`."""
    app = app_from_template(template, folder, **overrides)
    yield app
    app.extensions["cadreflow"].db.dispose()


def shared_api(template: Template, tmp_path_factory: pytest.TempPathFactory, name: str,
               **overrides: Any) -> Iterator[CaseApi]:
    """A module's own app (settings `overrides`) with cadre c1, its database closed after the module: for a
    fixture `yield from shared_api(...)` whose tests leave nothing another test reads (say, each deploying under
    keys of its own, `key_maker`)."""
    for app in own_app(template, tmp_path_factory.mktemp(name), **overrides):
        api = make_api(app, template)
        api.create_cadre("c1")
        yield api


def key_maker(prefix: str) -> Callable[[], str]:
    """Fresh process keys (prefix_0, prefix_1, ...) for tests that deploy into one shared app."""
    numbers = itertools.count()
    return lambda: f"{prefix}_{next(numbers)}"


def fire_after_deadline(services: Services) -> int:
    """Wait past a PT1S deadline and fire what is due."""
    time.sleep(TIMER_WAIT)
    return fire_due_timers(services)


def hold_in_incident(services: Services, case_id: int) -> None:
    """Put a case in incident the way a killed automatic step does (`hold_as_incident`): not over, not open."""
    with services.db.unit_of_work() as session:
        hold_as_incident(session, lock_case(session, case_id),
                         CaseIncident("step executor stopped (执行器已停止)", None, None))


def six_months_after(day: date) -> date:
    month_index = day.month - 1 + 6
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# Driving the processes over HTTP.

def start_vetting(api: CaseApi, cadre_id: str = "c1", post: str = "县发改局局长") -> dict:
    return api.start(VETTING, cadre_id, as_="org_dept", proposed_post=post, selection_method="competitive")


def finish_opinions(api: CaseApi, case_id: int) -> dict:
    for element in OPINION_TASKS:
        api.complete(case_id, element, opinion="positive", notes="无异议")
    return api.complete(case_id, "democratic_evaluation", votes_approve=30, votes_basic=2, votes_disapprove=1)


def vetting_to_notice(api: CaseApi, cadre_id: str = "c1", post: str = "县发改局局长") -> int:
    """A vetting case waiting in its public notice."""
    case_id = start_vetting(api, cadre_id, post)["id"]
    finish_opinions(api, case_id)
    case = api.complete(case_id, "org_head_review", decision="approve")
    assert case["open_tasks"] == [] and case["status"] == "open"
    return case_id


def send_objection(api: CaseApi, case_id: Any, as_: str = "discipline", **data: Any) -> Any:
    return api.post("/api/messages", as_=as_, json={"name": "vetting_objection", "case_id": case_id,
                                                    "data": data or {"report": "群众来信反映问题"}})


def start_admonishment(api: CaseApi, cadre_id: str = "c1", trigger: str = "complaint") -> dict:
    return api.start(ADMONISHMENT, cadre_id, as_="discipline", trigger=trigger, summary="群众反映工作作风问题")


def admonishment_to_follow_up(api: CaseApi, cadre_id: str = "c1") -> int:
    case_id = start_admonishment(api, cadre_id)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="情况属实")
    api.complete(case_id, "conduct_talk", talk_date="2024-05-01", minutes="谈话记录")
    api.complete(case_id, "rectification_plan", plan="整改措施")
    return case_id


def start_departure(api: CaseApi, cadre_id: str = "c1", reason: str = "promotion") -> dict:
    return api.start(DEPARTURE, cadre_id, as_="org_dept", departure_reason=reason,
                     planned_departure_on="2030-06-30")


def departure_to_fieldwork(api: CaseApi, cadre_id: str = "c1", team_lead: str = "audit2") -> int:
    case_id = start_departure(api, cadre_id)["id"]
    api.complete(case_id, "assign_audit_team", team_lead=team_lead, members="李四、王五")
    return case_id


def start_accountability(api: CaseApi, cadre_id: str = "c1", source: str = "hotline") -> dict:
    return api.start(ACCOUNTABILITY, cadre_id, as_="discipline", source=source, category="inaction",
                     allegation="对群众诉求长期不作为")


def accountability_to_review(api: CaseApi, circumstance: str, loss: str, cadre_id: str = "c1") -> int:
    case_id = start_accountability(api, cadre_id)["id"]
    api.complete(case_id, "preliminary_verification", founded=True, notes="基本属实")
    api.complete(case_id, "investigation", facts="查实", circumstance=circumstance, loss=loss)
    return case_id


def sanction(api: CaseApi, final: str, cadre_id: str = "c1") -> dict:
    """Run an accountability case to a sanction `final` (adjusted by the committee); the case."""
    case_id = accountability_to_review(api, "minor", "none", cadre_id)
    return api.complete(case_id, "committee_review", decision="adjust", final_sanction=final)


# Fixtures (imported by the conftest files of tests/api and tests/service).

_TEMPLATES: dict[int, Template] = {}


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Built once per session even though tests/api and tests/service each declare this fixture."""
    key = id(tmp_path_factory)
    if key not in _TEMPLATES:
        _TEMPLATES[key] = build_template(tmp_path_factory.mktemp("template"))
    return _TEMPLATES[key]


@pytest.fixture
def app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    """The app on a copy of the template: processes deployed, users made, deadlines 30 days."""
    app = app_from_template(template, tmp_path / "slow")
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def api(app: Flask, template: Template) -> CaseApi:
    return make_api(app, template)


@pytest.fixture
def cadre(api: CaseApi) -> dict:
    return api.create_cadre("c1")


FAST_FOLDER = "fast"  # where fast_app keeps its database, which patient_api opens too


@pytest.fixture
def fast_app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    """The app with every deadline one second."""
    yield from own_app(template, tmp_path / FAST_FOLDER, DEADLINES=FAST_DEADLINES)


@pytest.fixture
def fast_services(fast_app: Flask) -> Services:
    return fast_app.extensions["cadreflow"]


@pytest.fixture
def fast_api(fast_app: Flask, template: Template) -> CaseApi:
    return make_api(fast_app, template)


@pytest.fixture
def patient_api(fast_app: Flask, template: Template, tmp_path: Path) -> Iterator[CaseApi]:
    """`fast_api`'s database seen through an app whose deadlines are 30 days: a case it moves has time."""
    app = create_app(make_settings(tmp_path / FAST_FOLDER))
    yield make_api(app, template)
    app.extensions["cadreflow"].db.dispose()


# The error contract.

CLIENT_ERRORS = {400, 401, 403, 404, 409, 413, 422}


def assert_error(response: Any, status: int | set[int], code: str | None = None,
                 fields: set[str] | None = None) -> dict:
    """The response is an error of that status with body {"error": {"code", "message", "fields"?}}."""
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], error
    assert isinstance(error.get("message"), str) and error["message"], error
    if "fields" in error:
        assert isinstance(error["fields"], dict) and error["fields"], error
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in error["fields"].items()), error
    if code is not None:
        assert error["code"] == code, error
    if fields is not None:
        assert set(error.get("fields", {})) == fields, error
    return error
