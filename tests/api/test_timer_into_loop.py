"""A timer that leads a case into an automatic loop: the step is refused by the engine's loop guard, and the case
is held for a person instead of being tried again at every poll.

It was logged and left due: every pass of the worker ran the loop up to the guard again (close to two seconds of an
executor each time, for ever), so a few hundred such cases (a timer start opens one per cadre) kept the worker from
every other timer of the county.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.usecases import timers
from tests.api.support import CaseApi, Template, app_from_template, make_api
from tests.conformance.bpmn import definitions, flow, script, start

LOOP = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="wait_def"><bpmn:timeDuration>'
        '"PT1S"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
        '<bpmn:exclusiveGateway id="again"/>' + script("spin", "x = 1")
        + flow("start", "wait") + flow("wait", "again") + flow("again", "spin") + flow("spin", "again"))


@pytest.fixture
def guarded_app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    """The loop guard trips after 100 tasks, well inside a step budget no busy machine runs out of: the step must
    end refused by the guard, not stopped by its time limit (a different incident)."""
    app = app_from_template(template, tmp_path / "guarded", MAX_TASK_DEPTH=100, STEP_TIMEOUT_SECONDS=30)
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def guarded_api(guarded_app: Flask, template: Template) -> CaseApi:
    return make_api(guarded_app, template)


def test_a_timer_step_refused_by_the_loop_guard_holds_the_case(guarded_app, guarded_api, monkeypatch):
    api, services = guarded_api, guarded_app.extensions["cadreflow"]
    response = api.post("/api/processes/spinner/versions", as_="designer", data=definitions("spinner", start() + LOOP),
                        content_type="application/xml")
    assert response.status_code == 201, response.json
    assert api.put("/api/processes/spinner/starters", json={"roles": ["org_dept"]}).status_code == 200
    api.create_cadre("c1")
    case = api.start("spinner", "c1", as_="org_dept")
    time.sleep(1.2)
    steps, real = [], services.runner.fire_timers
    monkeypatch.setattr(services.runner, "fire_timers", lambda *args: steps.append(1) or real(*args))
    timers.fire_due_timers(services)
    held = api.case(case["id"])
    assert held["status"] == "incident" and "循环" in held["incident"]["message"], held
    timers.fire_due_timers(services)
    assert steps == [1], "the loop ran again at the next poll"
