"""A timer that leads a case into an automatic loop: the step is refused by the engine's loop guard, and the case
is held for a person instead of being tried again at every poll.

It was logged and left due: every pass of the worker ran the loop up to the guard again (close to two seconds of an
executor each time, for ever), so a few hundred such cases (a timer start opens one per cadre) kept the worker from
every other timer of the county.
"""

from __future__ import annotations

import time

from service.usecases import timers
from tests.conformance.bpmn import definitions, flow, script, start

LOOP = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="wait_def"><bpmn:timeDuration>'
        '"PT1S"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
        '<bpmn:exclusiveGateway id="again"/>' + script("spin", "x = 1")
        + flow("start", "wait") + flow("wait", "again") + flow("again", "spin") + flow("spin", "again"))


def test_a_timer_step_refused_by_the_loop_guard_holds_the_case(api, services, monkeypatch):
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
