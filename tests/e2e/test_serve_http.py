"""End to end: a real `cadreflow serve` process driven over HTTP, its timer worker included."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Http, running_server

pytestmark = pytest.mark.e2e
ROLES = ["org_dept", "org_head", "committee", "discipline"]


@pytest.fixture
def server(role_users_template: Path, tmp_path: Path) -> Iterator[Http]:
    with running_server(role_users_template, tmp_path, DEADLINES={"public_notice": "PT1S"}) as http:
        yield http


def _open_tasks(http: Http, case_id: int) -> dict[str, dict]:
    status, case = http.request("GET", f"/api/cases/{case_id}", as_="org_dept")
    assert status == 200, case
    return {task["element_id"]: task for task in case["open_tasks"]}


def _complete(http: Http, case_id: int, element_id: str, as_: str, data: dict) -> dict:
    task = _open_tasks(http, case_id)[element_id]
    status, body = http.request("POST", f"/api/tasks/{task['id']}/complete", {"data": data}, as_=as_)
    assert status == 200, body
    return body


def test_vetting_case_runs_over_real_http_with_the_timer_worker(server: Http) -> None:
    """A vetting case goes start → opinions → review → public notice timer (fired by serve) → appointed."""
    http = server
    for role in ROLES:
        http.login(role)
    status, _ = http.request("POST", "/api/cadres", {"id": "e1", "name": "周明", "unit": "县水利局", "post": "副局长",
                                                     "post_level": "middle", "post_started_on": "2018-01-01"},
                             as_="org_dept")
    assert status == 201
    start = {"process": "pre_appointment_vetting", "cadre_id": "e1",
             "data": {"proposed_post": "局长", "selection_method": "competitive"}}
    status, case = http.request("POST", "/api/cases", start, as_="org_dept")
    assert status == 201, case
    for element_id in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion"):
        _complete(http, case["id"], element_id, "org_dept", {"opinion": "positive"})
    _complete(http, case["id"], "democratic_evaluation", "org_dept",
              {"votes_approve": 30, "votes_basic": 2, "votes_disapprove": 1})
    after_review = _complete(http, case["id"], "org_head_review", "org_head", {"decision": "approve"})
    assert after_review["open_tasks"] == [] and after_review["next_timer_due"]

    deadline = time.monotonic() + 15
    while "committee_decision" not in _open_tasks(http, case["id"]):
        assert time.monotonic() < deadline, "the public-notice timer never fired"
        time.sleep(0.2)

    done = _complete(http, case["id"], "committee_decision", "committee", {"decision": "appoint"})
    assert (done["status"], done["outcome"]) == ("completed", "appointed")
    status, cadre = http.request("GET", "/api/cadres/e1", as_="org_dept")
    assert cadre["post"] == "局长"
    status, history = http.request("GET", f"/api/cases/{case['id']}/history", as_="discipline")
    timer_entries = [h for h in history if h["action"] == "timer"]
    assert len(timer_entries) == 1 and timer_entries[0]["actor"] == "system"


def test_objection_message_and_errors_over_real_http(server: Http) -> None:
    """Over HTTP: 401 without a token, 422 on a bad form, the objection message, 409 on a second completion."""
    http = server
    for role in ROLES:
        http.login(role)
    assert http.request("GET", "/api/cases")[0] == 401
    http.request("POST", "/api/cadres", {"id": "e2", "name": "吴芳", "unit": "县民政局", "post": "科长",
                                         "post_level": "middle", "post_started_on": "2020-01-01"}, as_="org_dept")
    start = {"process": "pre_appointment_vetting", "cadre_id": "e2",
             "data": {"proposed_post": "副局长", "selection_method": "organisation"}}
    status, case = http.request("POST", "/api/cases", start, as_="org_dept")
    task = _open_tasks(http, case["id"])["democratic_evaluation"]
    status, body = http.request("POST", f"/api/tasks/{task['id']}/complete", {"data": {"votes_approve": "many"}},
                                as_="org_dept")
    assert status == 422 and "votes_approve" in body["error"]["fields"]
    assert http.request("POST", "/api/messages", {"name": "vetting_objection", "case_id": case["id"], "data": {}},
                        as_="discipline")[0] == 409
    for element_id in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion"):
        _complete(http, case["id"], element_id, "org_dept", {"opinion": "neutral"})
    _complete(http, case["id"], "democratic_evaluation", "org_dept",
              {"votes_approve": 10, "votes_basic": 0, "votes_disapprove": 0})
    review = _open_tasks(http, case["id"])["org_head_review"]
    assert http.request("POST", f"/api/tasks/{review['id']}/complete", {"data": {"decision": "approve"}},
                        as_="org_head")[0] == 200
    assert http.request("POST", f"/api/tasks/{review['id']}/complete", {"data": {"decision": "approve"}},
                        as_="org_head")[0] == 409
    status, _ = http.request("POST", "/api/messages", {"name": "vetting_objection", "case_id": case["id"],
                                                       "data": {"reporter": "匿名"}}, as_="discipline")
    assert status == 202
    done = _complete(http, case["id"], "verify_objection", "discipline", {"substantiated": True})
    assert done["outcome"] == "rejected"


def test_serve_logs_each_request_without_its_query_string(server: Http, tmp_path: Path) -> None:
    """`serve` writes one line per request: method, path, status; a query string (a search, a key) stays out."""
    server.login("org_dept")
    status, _ = server.request("GET", "/api/cases?q=secret-search", as_="org_dept")
    assert status == 200
    assert server.log is not None
    log = server.log.read_text()
    line = next(line for line in log.splitlines() if "GET /api/cases " in line)
    assert line.split()[-2] == "200"
    assert "secret-search" not in log


def test_a_body_larger_than_any_caller_may_send_is_refused_before_it_is_read(server: Http) -> None:
    """waitress reads a whole body before the app sees it (its own bound: 1 GB), so the app's 413 came only once
    an anonymous caller had sent, and the server spooled to disk, all it announced. `serve` bounds waitress by
    the largest body the app takes from anyone (MAX_CONTENT_LENGTH): past it the answer is 413 at once."""
    host, port = server.base.removeprefix("http://").split(":")
    announced = 500_000_000  # far past MAX_CONTENT_LENGTH (about 10 MB), far below waitress's own 1 GB
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(b"POST /public/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n{" % announced)
        answer = connection.recv(200)  # nothing more sent: a server that waits for the rest times out here
    assert answer.startswith(b"HTTP/1.1 413"), answer
