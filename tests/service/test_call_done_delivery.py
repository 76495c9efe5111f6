"""A called child case's end reaches its caller however long the caller is stopped in an incident meanwhile."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from service.db.models import OutboxItem, utcnow
from service.usecases import delivery
from tests.api.support import template  # noqa: F401 - the session fixture
from tests.conformance.bpmn import chain, definitions, end, flow, start, terminate, user
from tests.service.test_incident_retries import SERVICE, api, failing  # noqa: F401 - the api fixture

CALLER = (start() + '<bpmn:parallelGateway id="split"/><bpmn:callActivity id="call" calledElement="called"/>'
          + SERVICE + '<bpmn:parallelGateway id="join"/>' + user("a") + end()
          + chain("start", "split", "call", "join", "a", "end") + flow("split", "lookup") + flow("lookup", "join"))


def test_a_childs_end_waits_for_its_caller_to_leave_its_incident(api, monkeypatch):  # noqa: F811
    """The caller's other branch fails (a records system down) while its child runs; the child ends. Its end is
    not given up after the outbox's last attempt while the caller is in incident: once a person has the caller
    retried, the child's outcome reaches it and it goes on (given up, the caller would wait for ever)."""
    for key, body, lanes in (("called", start() + user("c") + terminate("approved")
                              + chain("start", "c", "end_approved"), {"org_dept": ["c"]}),
                             ("caller", CALLER, {"org_dept": ["a"]})):
        response = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, lanes),
                            content_type="application/xml")
        assert response.status_code == 201, response.get_json()
    failing(100, monkeypatch)
    caller = api.start("caller")
    assert caller["status"] == "incident" and len(caller["child_case_ids"]) == 1
    api.complete(caller["child_case_ids"][0], "c", as_="org_dept", ok=True)
    services = api.client.application.extensions["cadreflow"]
    for _ in range(delivery.MAX_ATTEMPTS + 2):  # every attempt the outbox would make, and more
        deliver_now(services)
    monkeypatch.undo()  # the records system is back
    assert api.post(f"/api/cases/{caller['id']}/retry", as_="admin").status_code == 200
    deliver_now(services)
    after = api.case(caller["id"])
    assert (after["status"], [t["element_id"] for t in after["open_tasks"]]) == ("open", ["a"]), after
    assert after["data"]["call_outcome"] == "approved"


def started_caller(client_api) -> dict:
    """A started case of `caller`, waiting at its call activity for a child of `called` (one task `c`, ending
    `approved`); then a task `a`."""
    caller_body = (start() + '<bpmn:callActivity id="call" calledElement="called"/>' + user("a") + end()
                   + chain("start", "call", "a", "end"))
    for key, body, lanes in (("called", start() + user("c") + terminate("approved")
                              + chain("start", "c", "end_approved"), {"org_dept": ["c"]}),
                             ("caller", caller_body, {"org_dept": ["a"]})):
        response = client_api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, lanes),
                            content_type="application/xml")
        assert response.status_code == 201, response.get_json()
    return client_api.start("caller")


def deliver_now(services) -> None:
    """The worker's delivery pass, as if the wait before each item's next attempt had passed."""
    with services.db.unit_of_work() as session:
        session.execute(update(OutboxItem).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    delivery.deliver_due(services)


def test_a_caller_whose_step_on_its_childs_end_is_stopped_is_held_and_goes_on_after_a_retry(api, monkeypatch):  # noqa: F811
    """The caller's step on its child's end is stopped (past the executor's time limit) at every attempt: the caller
    is held as an incident for a person, as a timer step's case is, rather than left open waiting for an end the
    outbox gives up; retried by a person, it takes the child's end and goes on."""
    from workflows.engine import Incident

    caller = started_caller(api)
    services = api.client.application.extensions["cadreflow"]

    def stopped(*args):
        raise Incident("the step ran past its time limit of 5 s and was stopped (步骤执行超时)")
    monkeypatch.setattr(services.runner, "resume_call", stopped)
    api.complete(caller["child_case_ids"][0], "c", as_="org_dept", ok=True)
    for _ in range(delivery.MAX_ATTEMPTS + 2):
        deliver_now(services)
    assert api.case(caller["id"])["status"] == "incident"
    monkeypatch.undo()
    assert api.post(f"/api/cases/{caller['id']}/retry", as_="admin").status_code == 200
    deliver_now(services)
    after = api.case(caller["id"])
    assert (after["status"], [t["element_id"] for t in after["open_tasks"]]) == ("open", ["a"]), after


def test_a_caller_whose_step_on_its_childs_end_is_refused_is_held_and_goes_on_after_a_retry(api, monkeypatch):  # noqa: F811
    """The caller's step on its child's end is refused by the service (what it made breaks a rule, e.g. a child case
    a start rule refuses) at every attempt: the caller is held as an incident for a person, as a timer step's case
    is, not left open with the end leased and tried again every two minutes for ever, failing the worker's pass."""
    from service.errors import Invalid

    caller = started_caller(api)
    services = api.client.application.extensions["cadreflow"]

    def refused(*args):
        raise Invalid("先审计，后离任 (the departure audit must come first)")
    monkeypatch.setattr(services.runner, "resume_call", refused)
    api.complete(caller["child_case_ids"][0], "c", as_="org_dept", ok=True)
    deliver_now(services)  # no exception out of the worker's pass
    held = api.case(caller["id"])
    assert held["status"] == "incident" and "先审计，后离任" in held["incident"]["message"], held
    monkeypatch.undo()
    assert api.post(f"/api/cases/{caller['id']}/retry", as_="admin").status_code == 200
    deliver_now(services)
    after = api.case(caller["id"])
    assert (after["status"], [t["element_id"] for t in after["open_tasks"]]) == ("open", ["a"]), after
