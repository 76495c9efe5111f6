"""Designer code whose time goes into one builtin call (C code, no designer frame the sandbox's tracer sees):
the step's executor is stopped at its budget, the case an incident or the request refused, nothing half-written,
the server still serving."""

from __future__ import annotations

import math
import time

import pytest

from service.usecases import bulk
from tests.api.support import key_maker, shared_api
from tests.engine.bpmn_builder import form_schema, script_process

# One call of a builtin, each comparison walking a million items: about 10**12 steps, none in designer code.
ENDLESS_CALL = "len(sorted([[0] * 1000000] * 1000000))"
STEP_TIMEOUT = 1.0

fresh_key = key_maker("c_call")


@pytest.fixture(scope="module")
def c_api(template, tmp_path_factory):
    yield from shared_api(template, tmp_path_factory, "c-calls", STEP_TIMEOUT_SECONDS=STEP_TIMEOUT)


def deploy(api, key, bpmn):
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=bpmn, content_type="application/xml")
    assert response.status_code == 201, response.json
    return key


def timed(call):
    began = time.monotonic()
    result = call()
    return result, time.monotonic() - began


def test_a_script_spending_its_time_in_one_builtin_call_is_an_incident(c_api):
    key = fresh_key()
    deploy(c_api, key, script_process(f"x = {ENDLESS_CALL}", key=key))
    response, took = timed(lambda: c_api.post("/api/cases", as_="admin",
                                              json={"process": key, "cadre_id": "c1", "data": {}}))
    assert took < 30, took
    assert response.status_code in (201, 409), response.json
    if response.status_code == 201:
        assert response.json["status"] == "incident", response.json


def test_a_form_rule_spending_its_time_in_one_builtin_call_refuses_the_completion(c_api):
    key = fresh_key()
    form = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
            "x-validate": [{"expr": f"{ENDLESS_CALL} > 0", "field": "ok", "message": "不行 (no)"}]}
    deploy(c_api, key, script_process("x = 1", key=key).replace(form_schema().encode(), form_schema(form).encode()))
    case = c_api.post("/api/cases", as_="admin", json={"process": key, "cadre_id": "c1", "data": {}}).json
    task = case["open_tasks"][0]
    response, took = timed(lambda: c_api.post(f"/api/tasks/{task['id']}/complete", as_="admin",
                                              json={"data": {"ok": True}}))
    assert took < 30, took
    assert response.status_code in (409, 422), response.json
    after = c_api.get(f"/api/cases/{case['id']}", as_="admin").json
    assert [t["id"] for t in after["open_tasks"]] == [task["id"]], after


def test_a_condition_spending_its_time_in_one_builtin_call_is_an_incident(c_api):
    key = fresh_key()
    deploy(c_api, key, script_process("x = 1", condition=f"{ENDLESS_CALL} > 0", key=key))
    response, took = timed(lambda: c_api.post("/api/cases", as_="admin",
                                              json={"process": key, "cadre_id": "c1", "data": {}}))
    assert took < 30, took
    assert response.status_code in (201, 409), response.json


def test_a_bulk_start_gives_each_case_one_step_budget_not_the_whole_batchs_to_its_first(c_api):
    """A batch of n starts gets n step budgets, one per case: the first case's builtin call may not spend
    them all (n times the step limit, with the job's and its cadres' rows locked meanwhile)."""
    key = fresh_key()
    deploy(c_api, key, script_process(f"x = {ENDLESS_CALL}", key=key))
    for number in range(30):
        c_api.create_cadre(f"b{number:03}")
    job = c_api.post("/api/bulk-starts", as_="admin", json={"process": key, "filter": "id[:1] == 'b'"})
    assert job.status_code == 202, job.json
    services = c_api.client.application.extensions["cadreflow"]
    _, took = timed(lambda: bulk.run_jobs(services))
    view = c_api.get(f"/api/bulk-starts/{job.json['id']}", as_="admin").json
    assert view["opened"] == 0, view
    assert f"time limit of {STEP_TIMEOUT:g} s" in view["errors"][-1]["error"], view
    assert took < 15, took


def test_a_bulk_start_of_honest_cases_may_take_longer_than_one_budget_together(c_api):
    """Each case's budget starts as it begins: twenty cases each looping for a fraction of the step limit all
    open, though together they take several step limits."""
    key = fresh_key()
    deploy(c_api, key, script_process("n = 0\nfor i in range(40000):\n    n = n + 1", key=key))
    services = c_api.client.application.extensions["cadreflow"]
    c_api.create_cadre("g000")  # one case alone first: how long one takes on this machine, now
    one = c_api.post("/api/bulk-starts", as_="admin", json={"process": key, "filter": "id == 'g000'"})
    assert one.status_code == 202, one.json
    _, alone = timed(lambda: bulk.run_jobs(services))
    assert alone < STEP_TIMEOUT / 2, alone  # else one case is too close to its own budget to show anything
    cases = min(150, max(20, math.ceil(3 * STEP_TIMEOUT / alone)))  # together two budgets or more; one batch
    for number in range(cases):
        c_api.create_cadre(f"h{number:03}")
    job = c_api.post("/api/bulk-starts", as_="admin", json={"process": key, "filter": "id[:1] == 'h'"})
    assert job.status_code == 202, job.json
    _, took = timed(lambda: bulk.run_jobs(services))
    view = c_api.get(f"/api/bulk-starts/{job.json['id']}", as_="admin").json
    assert (view["status"], view["opened"], view["errors"]) == ("done", cases, []), view
    assert took > STEP_TIMEOUT, (took, alone, cases)  # else the batch proves nothing of budgets per case


def test_a_filter_too_slow_for_its_batch_is_not_tried_cadre_by_cadre_for_one_step_limit_each(c_api, monkeypatch):
    """A filter taking a good part of the step limit on each cadre fails its batch at the step limit; looking for
    the cadre it fails on alone then took one try per cadre of the batch (200, each up to the step limit) while
    the job's row stayed locked. The search stops after one step limit of trying: the job fails, naming no
    cadre."""
    slow = "id[:1] != 'f' or id == 'f000' or len([i for i in range(100000)]) > 0"
    for number in range(80):
        c_api.create_cadre(f"f{number:03}")
    job = c_api.post("/api/bulk-starts", as_="admin", json={"process": "admonishment", "filter": slow,
                                                           "data": {"trigger": "complaint", "summary": "查"}})
    assert job.status_code == 202, job.json
    services = c_api.client.application.extensions["cadreflow"]
    tried = []
    real_select = services.runner.select
    monkeypatch.setattr(services.runner, "select", lambda expression, scopes: tried.append(len(scopes)) or
                        real_select(expression, scopes))
    _, took = timed(lambda: bulk.run_jobs(services))
    view = c_api.get(f"/api/bulk-starts/{job.json['id']}", as_="admin").json
    assert (view["status"], view["opened"]) == ("failed", 0), view
    assert view["errors"][-1]["cadre_id"] is None and "time limit" in view["errors"][-1]["fields"]["filter"], view
    batch, *alone = tried
    assert len(alone) < batch / 2 and took < 10, (took, tried)  # not each cadre of the batch, 80 of them slow
