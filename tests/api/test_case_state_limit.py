"""Case data cannot grow without end: a step whose saved state (or the messages it sends, or the history it writes)
would pass MAX_CASE_STATE_KB is refused as an incident (409) and nothing of it is stored, whether it starts a case
or completes a task."""

from __future__ import annotations

import pytest

from tests.api.support import app_from_template, assert_error, make_api
from tests.engine.bpmn_builder import KEY, script_process

LIMIT_KB = 64
BLOAT = 'pad = "a" * 100000'  # about 100 KB of case data: over the limit set here, far under the default
BLOAT_PAYLOAD = '{"pad": "a" * 100000}'  # as much in a message's payload


@pytest.fixture
def small_api(template, tmp_path):
    app = app_from_template(template, tmp_path / "small", MAX_CASE_STATE_KB=LIMIT_KB)
    api = make_api(app, template)
    api.create_cadre("c1")
    yield api
    app.extensions["cadreflow"].db.dispose()


def deploy(api, bpmn: bytes) -> None:
    response = api.post(f"/api/processes/{KEY}/versions", as_="designer", data=bpmn, content_type="application/xml")
    assert response.status_code in (200, 201), response.json


def case_count(api) -> int:
    return api.get("/api/cases").json["total"]


def test_a_start_that_would_store_too_much_is_refused_and_opens_nothing(small_api):
    deploy(small_api, script_process(BLOAT))
    before = case_count(small_api)
    body = assert_error(small_api.post("/api/cases", as_="admin", json={"process": KEY, "cadre_id": "c1"}), 409)
    assert f"more than the {LIMIT_KB} KB allowed" in body["message"], body
    assert case_count(small_api) == before


def test_a_completion_that_would_store_too_much_leaves_the_case_as_it_was(small_api):
    deploy(small_api, script_process("x = 1", post_script=BLOAT))
    case = small_api.start(KEY, "c1")
    task = case["open_tasks"][0]
    history = small_api.get(f"/api/cases/{case['id']}/history").json
    refused = small_api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"ok": True}})
    assert "MAX_CASE_STATE_KB" in assert_error(refused, 409)["message"]
    after = small_api.case(case["id"])
    assert [t["id"] for t in after["open_tasks"]] == [task["id"]] and "pad" not in after["data"]
    assert small_api.get(f"/api/cases/{case['id']}/history").json == history


def test_the_same_process_runs_under_the_default_limit(api, cadre):
    deploy(api, script_process(BLOAT))
    assert len(api.start(KEY, "c1")["data"]["pad"]) == 100000


def test_a_step_sending_more_than_a_case_may_store_is_refused_and_sends_nothing(small_api):
    """A thrown message's payload is not part of the state, yet it is stored (in the outbox) and handed to every
    case waiting for it: it is held to the same limit."""
    from sqlalchemy import func, select

    from service.db.models import OutboxItem
    from tests.conformance.bpmn import chain, definitions, end, message, message_ref, start

    throw = f'<bpmn:intermediateThrowEvent id="tell">{message_ref("news", payload=BLOAT_PAYLOAD)}' \
            "</bpmn:intermediateThrowEvent>"
    deploy(small_api, definitions(KEY, start() + throw + end() + chain("start", "tell", "end"), top=message("news")))
    before = case_count(small_api)
    body = assert_error(small_api.post("/api/cases", as_="admin", json={"process": KEY, "cadre_id": "c1"}), 409)
    assert "MAX_CASE_STATE_KB" in body["message"], body
    assert case_count(small_api) == before
    with small_api.client.application.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0


def test_a_failure_with_a_huge_message_stores_it_shortened_at_each_failure(api, cadre):
    """An error's text is no part of the case data the limit counts: a script raising a 1 MB message (or int() of a
    1 MB field, whose error repeats it) stored it whole in the case row and again in a history entry at every retry,
    a chained history nobody may trim."""
    deploy(api, script_process("raise ValueError('x' * 1000000)"))
    case_id = api.start(KEY, "c1")["id"]
    for _ in range(2):
        assert api.post(f"/api/cases/{case_id}/retry").status_code == 200
    case = api.get(f"/api/cases/{case_id}").json
    assert case["status"] == "incident" and "ValueError:xxx" in case["incident"]["message"]
    assert 100 < len(case["incident"]["message"]) <= 4000
    history = api.get(f"/api/cases/{case_id}/history").data
    assert len(history) < 40_000


def _looping(passes: int) -> bytes:
    """A script in a loop setting about 30 KB each pass: the state keeps the last value, each pass's history entry its
    own."""
    from tests.conformance.bpmn import LANE, chain, definitions, end, flow, script, start, user

    body = (start() + script("init", "i = 0") + script("pad", "i = i + 1\npad = str(i) + 'p' * 30000")
            + '<bpmn:exclusiveGateway id="gw" default="f_gw_a"/>\n' + user("a") + end()
            + chain("start", "init", "pad", "gw") + flow("gw", "pad", f"i < {passes}")
            + flow("gw", "a", flow_id="f_gw_a") + chain("a", "end"))
    return definitions(KEY, body, {LANE: ["a"]})


def test_a_step_writing_more_history_than_a_case_may_store_is_refused_and_opens_nothing(small_api):
    """The history a step writes is no part of the state either, yet stored for good (a chained history nobody may
    trim): 60 passes of a 300 KB value stored 18 MB of history with a state under the limit."""
    deploy(small_api, _looping(5))  # some 150 KB of history, a state of some 30 KB
    before = case_count(small_api)
    body = assert_error(small_api.post("/api/cases", as_="admin", json={"process": KEY, "cadre_id": "c1"}), 409)
    assert "MAX_CASE_STATE_KB" in body["message"], body
    assert case_count(small_api) == before


def test_a_loop_writing_history_within_the_limit_runs(small_api):
    deploy(small_api, _looping(1))
    assert small_api.start(KEY, "c1")["data"]["i"] == 1
