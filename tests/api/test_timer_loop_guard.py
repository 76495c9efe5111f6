"""A loop through a short timer is held once its timers fired MAX_TIMER_FIRINGS_WITHOUT_PERSON times with no person
acting on the case, and a person's act counts from 0 again.

The engine's loop guard counts within one step; a loop drawn through a PT1S timer is a new step at every poll, so
it fired once per case per poll for ever, each firing a step of an executor and an entry of history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text, update

from service.db.models import Case, utcnow
from service.usecases import timers
from tests.api.support import TIMER_WAIT, CaseApi, Template, make_api, own_app
from tests.conformance.bpmn import LANE, definitions, end, flow, script, start, user

LIMIT = 2
# A person's task beside a loop that waits one second, ticks, and waits again, through an exclusive gateway.
TICKING = definitions("ticking", start() + '<bpmn:parallelGateway id="fork"/>' + user("task") + end()
                      + '<bpmn:exclusiveGateway id="again"/>'
                      + '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="wait_def">'
                        '<bpmn:timeDuration>"PT1S"</bpmn:timeDuration></bpmn:timerEventDefinition>'
                        '</bpmn:intermediateCatchEvent>'
                      + script("tick", "ticks = 1")
                      + flow("start", "fork") + flow("fork", "task") + flow("task", "end") + flow("fork", "again")
                      + flow("again", "wait") + flow("wait", "tick") + flow("tick", "again"),
                      lanes={LANE: ["task"]})


@pytest.fixture
def guarded_app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    yield from own_app(template, tmp_path / "timer-guard", MAX_TIMER_FIRINGS_WITHOUT_PERSON=LIMIT)


@pytest.fixture
def guarded_api(guarded_app: Flask, template: Template) -> CaseApi:
    return make_api(guarded_app, template)


def ticking_case(api: CaseApi) -> dict:
    response = api.post("/api/processes/ticking/versions", as_="designer", data=TICKING,
                        content_type="application/xml")
    assert response.status_code == 201, response.json
    assert api.put("/api/processes/ticking/starters", json={"roles": [LANE]}).status_code == 200
    api.create_cadre("c1")
    return api.start("ticking", "c1", as_=LANE)


def poll(services) -> None:
    """One poll of the worker's timer stage, once the loop's timer is due."""
    time.sleep(TIMER_WAIT)
    timers.fire_due_timers(services)


def ticks(api: CaseApi, case_id: int) -> int:
    """How often the loop's timer fired, as its history says."""
    return sum(entry["action"] == "timer" and entry["task"] == "wait" for entry in api.history(case_id))


def firings(services, case_id: int) -> int:
    with services.db.write_engine.connect() as connection:
        return connection.execute(text("SELECT timer_firings FROM cases WHERE id = :id"), {"id": case_id}).scalar()


def test_a_timer_loop_nobody_acts_on_is_held_and_a_persons_step_counts_from_0(guarded_app, guarded_api):
    api, services = guarded_api, guarded_app.extensions["cadreflow"]
    case_id = ticking_case(api)["id"]
    for _ in range(LIMIT):
        poll(services)
    assert api.case(case_id)["status"] == "open" and firings(services, case_id) == LIMIT
    api.complete(case_id, "task", ok=True)  # a person's step: the loop may go on
    assert firings(services, case_id) == 0
    for _ in range(LIMIT):
        poll(services)
    fired = ticks(api, case_id)
    assert fired == 2 * LIMIT
    poll(services)
    held = api.case(case_id)
    assert held["status"] == "incident" and "无人办理" in held["incident"]["message"], held
    assert ticks(api, case_id) == fired, "the timer fired past the limit"
    poll(services)
    assert ticks(api, case_id) == fired, "a held case fired at the next poll"
    retried = api.post(f"/api/cases/{case_id}/retry", as_="admin")  # a person lets it go on
    assert retried.status_code == 200, retried.json
    assert retried.json["status"] == "open" and firings(services, case_id) == 0


def test_a_timer_firing_after_an_hours_quiet_counts_from_1(guarded_app, guarded_api):
    """A slow repeating timer (a daily reminder on a task nobody takes) is no loop: a firing more than an hour after
    the case's previous step starts the count again instead of adding to it."""
    api, services = guarded_api, guarded_app.extensions["cadreflow"]
    case_id = ticking_case(api)["id"]
    for _ in range(LIMIT):
        poll(services)
    assert firings(services, case_id) == LIMIT
    with services.db.write_engine.begin() as connection:  # the loop's last step two hours ago
        connection.execute(update(Case).where(Case.id == case_id).values(updated_at=utcnow() - timedelta(hours=2)))
    poll(services)
    assert api.case(case_id)["status"] == "open" and firings(services, case_id) == 1
