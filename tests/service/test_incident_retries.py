"""A failed service task retries itself after a growing delay, then stays an incident for a person."""

from __future__ import annotations

from pathlib import Path

import pytest

import workflows.glue as glue
from service.errors import Invalid
from service.usecases import incidents
from tests.api.support import app_from_template, make_api
from tests.conformance.bpmn import chain, definitions, end, start, user

SERVICE = ('<bpmn:serviceTask id="lookup"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="cadre_facts" '
           'resultVariable="facts"><spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator>'
           "</bpmn:extensionElements></bpmn:serviceTask>")


@pytest.fixture
def api(template, tmp_path: Path):
    app = app_from_template(template, tmp_path / "retries", INCIDENT_RETRIES=2, INCIDENT_RETRY_SECONDS=0)
    api = make_api(app, template)
    api.create_cadre("c1")
    body = start() + SERVICE + user("a") + end() + chain("start", "lookup", "a", "end")
    response = api.post("/api/processes/flaky/versions", as_="designer",
                        data=definitions("flaky", body, {"org_dept": ["a"]}), content_type="application/xml")
    assert response.status_code == 201, response.get_json()
    yield api
    app.extensions["cadreflow"].db.dispose()


def failing(times: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make cadre_facts fail `times` times, then answer; returns the call counter."""
    calls = [0]
    real = glue.OPERATIONS["cadre_facts"]

    def flaky(effects, data, params):
        calls[0] += 1
        if calls[0] <= times:
            raise ConnectionError("档案系统暂时不可用 (records system unavailable)")
        return real(effects, data, params)
    monkeypatch.setitem(glue.OPERATIONS, "cadre_facts", flaky)
    return calls


def test_a_transient_failure_recovers_by_itself(api, monkeypatch):
    """Fails at start and on the first retry; the second automatic retry goes on to the user task."""
    calls = failing(2, monkeypatch)
    services = api.client.application.extensions["cadreflow"]
    case = api.start("flaky")
    assert case["status"] == "incident" and case["incident"]["element_id"] == "lookup"
    assert incidents.retry_due(services) == 0 and api.case(case["id"])["status"] == "incident"
    assert incidents.retry_due(services) == 1
    after = api.case(case["id"])
    assert (after["status"], [t["element_id"] for t in after["open_tasks"]], calls[0]) == ("open", ["a"], 3)
    retries = [e for e in api.history(case["id"]) if e["action"] == "retry"]
    assert [e["detail"] for e in retries] == [{"attempt": 1, "automatic": True}, {"attempt": 2, "automatic": True}]


def test_a_lasting_failure_stops_retrying_and_waits_for_a_person(api, monkeypatch):
    """After INCIDENT_RETRIES automatic tries the case stays in incident; a person's retry still works."""
    failing(10, monkeypatch)
    services = api.client.application.extensions["cadreflow"]
    case = api.start("flaky")
    assert incidents.retry_due(services) == 0 and incidents.retry_due(services) == 0
    assert incidents.retry_due(services) == 0  # nothing due any more
    history = [e["action"] for e in api.history(case["id"])]
    assert history.count("retry") == 2 and history[-1] == "retries_exhausted"
    monkeypatch.undo()  # the records system is back
    assert api.post(f"/api/cases/{case['id']}/retry", as_="admin").status_code == 200
    assert api.case(case["id"])["status"] == "open"


def test_a_script_failure_is_not_retried(api):
    """Only service tasks retry themselves: a designer's broken script would fail the same way again."""
    broken = '<bpmn:scriptTask id="s"><bpmn:script>x = 1 / 0</bpmn:script></bpmn:scriptTask>'
    body = start() + broken + user("a") + end() + chain("start", "s", "a", "end")
    response = api.post("/api/processes/broken/versions", as_="designer",
                        data=definitions("broken", body, {"org_dept": ["a"]}), content_type="application/xml")
    assert response.status_code == 201
    case = api.start("broken")
    services = api.client.application.extensions["cadreflow"]
    assert case["status"] == "incident" and incidents.retry_due(services) == 0
    assert [e for e in api.history(case["id"]) if e["action"] == "retry"] == []


def test_a_persons_failed_retry_does_not_put_off_the_automatic_one(template, tmp_path, monkeypatch):
    """Audit finding: each failing retry by a person planned the automatic retry anew, a full delay later, so
    retrying by hand again and again kept the automatic retry from ever running. It keeps its time now."""
    from sqlalchemy import select

    from service.db.models import Case

    app = app_from_template(template, tmp_path / "patient", INCIDENT_RETRIES=2, INCIDENT_RETRY_SECONDS=600)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        body = start() + SERVICE + user("a") + end() + chain("start", "lookup", "a", "end")
        assert api.post("/api/processes/flaky/versions", as_="designer", data=definitions(
            "flaky", body, {"org_dept": ["a"]}), content_type="application/xml").status_code == 201
        failing(10, monkeypatch)
        services = app.extensions["cadreflow"]
        case_id = api.start("flaky")["id"]

        def planned():
            with services.db.unit_of_work(write=False) as session:
                return session.scalar(select(Case.retry_at).where(Case.id == case_id))
        first = planned()
        assert first is not None
        for _ in range(3):
            retried = api.post(f"/api/cases/{case_id}/retry", as_="admin")
            assert retried.status_code == 200 and retried.json["status"] == "incident"
        assert planned() == first
        assert [e["action"] for e in api.history(case_id)].count("retry") == 3
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_retry_stopped_at_its_time_limit_still_counts(api, monkeypatch):
    """An automatic retry whose step is stopped (the records system hangs past the executor's time limit) has
    nothing to store, but it was an attempt: the case runs out of its INCIDENT_RETRIES like any other, instead of
    being tried again, for the whole time limit, at every poll for ever."""
    from workflows.engine import Incident

    failing(10, monkeypatch)
    services = api.client.application.extensions["cadreflow"]
    case = api.start("flaky")
    tries = [0]

    def stopped(*args):
        tries[0] += 1
        raise Incident("the step ran past its time limit of 5 s and was stopped (步骤执行超时)")
    monkeypatch.setattr(services.runner, "retry", stopped)
    for _ in range(5):
        assert incidents.retry_due(services) == 0
    assert tries[0] == 2 and api.case(case["id"])["status"] == "incident"
    history = [e["action"] for e in api.history(case["id"])]
    assert history.count("retry") == 2 and history[-1] == "retries_exhausted"


def test_one_case_whose_retry_raises_holds_back_no_other(api, monkeypatch):
    """A retry that fails with what the pass does not expect (a step refused as stored, a bug) is logged: the
    incidents due after it are still retried, at this pass and at every pass it keeps failing."""
    failing(2, monkeypatch)
    services = api.client.application.extensions["cadreflow"]
    stuck, other = api.start("flaky"), api.start("flaky")
    real = incidents.run_step

    def refused(services, session, case, *args, **kwargs):
        if case.id == stuck["id"]:
            raise Invalid("the step made what its form refuses (步骤结果不合表单)", {})
        return real(services, session, case, *args, **kwargs)
    monkeypatch.setattr(incidents, "run_step", refused)
    assert incidents.retry_due(services) == 1
    assert (api.case(stuck["id"])["status"], api.case(other["id"])["status"]) == ("incident", "open")
