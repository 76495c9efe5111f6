"""Returning a task to the previous step over HTTP: a process marking conduct_talk allowReturn="true"."""

from __future__ import annotations

import time

import pytest

from tests.api.support import TIMER_WAIT, assert_error, start_admonishment
from tests.conftest import PASSWORD
from tests.engine.test_returns import with_return


@pytest.fixture
def returnable(api, cadre):
    """admonishment redeployed with conduct_talk returnable; a case at conduct_talk (intake done by discipline2)."""
    response = api.post("/api/processes/admonishment/versions", as_="designer",
                        data=with_return("admonishment", "conduct_talk"), content_type="application/xml")
    assert response.status_code == 201, response.json
    case_id = start_admonishment(api)["id"]
    intake = api.open_task(case_id, "intake_review")
    assert api.complete_raw(intake["id"], "discipline2", {"form": "talk", "reason": "属实"}).status_code == 200
    return case_id, intake["id"]


def send_back(api, task_id, as_, reason="谈话提纲需重新审核"):
    return api.post(f"/api/tasks/{task_id}/return", as_=as_, json={"reason": reason})


def test_a_return_reopens_the_previous_step_for_whoever_did_it(api, returnable):
    """conduct_talk returned: intake_review open again (same id), held by discipline2 who did it, notified;
    the history says who returned what to where and why."""
    case_id, intake_id = returnable
    talk = api.open_task(case_id, "conduct_talk")
    response = send_back(api, talk["id"], "discipline")
    assert response.status_code == 200, response.json
    assert [(t["element_id"], t["id"], t["assignee"]) for t in response.json["open_tasks"]] == [
        ("intake_review", intake_id, "discipline2")]
    assert api.get(f"/api/tasks/{talk['id']}").json["status"] == "cancelled"
    entry = [e for e in api.history(case_id) if e["action"] == "return"][-1]
    assert (entry["actor"], entry["task"]) == ("discipline", "conduct_talk")
    assert entry["detail"] == {"task_id": talk["id"], "reason": "谈话提纲需重新审核", "to": ["intake_review"],
                               "holders": {intake_id: "discipline2"}}  # what `check` holds the row to
    told = [n for n in api.get("/api/notifications", as_="discipline2").json["items"] if "退回" in n["text"]]
    assert [n["task_id"] for n in told] == [intake_id]
    assert api.complete_raw(intake_id, "discipline2", {"form": "talk", "reason": "补充后属实"}).status_code == 200
    assert api.open_elements(case_id) == ["conduct_talk"]



def test_a_step_returned_to_a_deactivated_user_goes_to_its_role(api, returnable):
    """discipline2 did the intake and was deactivated since: the returned intake waits in the discipline pool, told
    to the role's holders, instead of being held by someone who can no longer log in."""
    case_id, intake_id = returnable
    assert api.patch("/api/users/discipline2", json={"active": False}).status_code == 200
    response = send_back(api, api.open_task(case_id, "conduct_talk")["id"], "discipline")
    assert response.status_code == 200, response.json
    assert [(t["id"], t["assignee"]) for t in response.json["open_tasks"]] == [(intake_id, None)]
    told = [n["task_id"] for n in api.get("/api/notifications", as_="multi").json["items"] if "退回" in n["text"]]
    assert told == [intake_id]
    assert api.complete_raw(intake_id, "multi", {"form": "talk", "reason": "补充后属实"}).status_code == 200


def test_a_step_returned_to_a_user_who_lost_its_role_goes_to_its_role(api, returnable):
    """discipline2 did the intake and was moved to audit since: the returned intake waits in the discipline pool
    rather than being held by someone whose roles no longer give it the task (a holder may complete whatever its
    roles)."""
    case_id, intake_id = returnable
    assert api.patch("/api/users/discipline2", json={"roles": ["audit"]}).status_code == 200
    login = api.client.post("/api/auth/token", json={"username": "discipline2", "password": PASSWORD})
    api.tokens["discipline2"] = login.json["token"]  # the role change ended its tokens
    response = send_back(api, api.open_task(case_id, "conduct_talk")["id"], "discipline")
    assert response.status_code == 200, response.json
    assert [(t["id"], t["assignee"]) for t in response.json["open_tasks"]] == [(intake_id, None)]
    assert_error(api.complete_raw(intake_id, "discipline2", {"form": "talk", "reason": "补充后属实"}), 403)
    assert api.complete_raw(intake_id, "multi", {"form": "talk", "reason": "补充后属实"}).status_code == 200


def test_refusals(api, returnable):
    """Not allowed by the process (409), no reason (422), not the task's role (403), an outsider (404),
    a closed task (409)."""
    case_id, intake_id = returnable
    talk = api.open_task(case_id, "conduct_talk")
    assert_error(send_back(api, talk["id"], "discipline", reason=" "), 422, fields={"reason"})
    assert_error(send_back(api, talk["id"], "committee"), {403, 404})
    assert_error(send_back(api, talk["id"], "audit"), 404)
    assert_error(send_back(api, talk["id"], "org_head"), 404)
    assert_error(send_back(api, intake_id, "discipline"), 409)  # closed
    assert send_back(api, talk["id"], "discipline").status_code == 200
    assert_error(send_back(api, intake_id, "discipline2"), 409)  # intake_review is not marked allowReturn
    assert api.open_elements(case_id) == ["intake_review"]


def test_a_return_after_its_interrupting_deadline_passed_finds_the_deadline_fired_first(fast_api, fast_services):
    """The inquiry reply (returnable here) is past its interrupting PT1S deadline and no worker has fired it: a
    return would reopen the intake the deadline has closed. The deadline fires first, as for a completion or an
    extension; the return finds the task gone (409) and the case at the escalation, no return recorded."""
    response = fast_api.post("/api/processes/admonishment/versions", as_="designer",
                             data=with_return("admonishment", "record_inquiry_reply"), content_type="application/xml")
    assert response.status_code == 201, response.json
    fast_api.create_cadre("c1")
    case_id = start_admonishment(fast_api)["id"]
    fast_api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    task = fast_api.open_task(case_id, "record_inquiry_reply")
    time.sleep(TIMER_WAIT)  # past the PT1S deadline; no fire_due_timers
    assert_error(send_back(fast_api, task["id"], "discipline"), 409)
    assert fast_api.open_elements(case_id) == ["escalation_review"]
    actions = [e["action"] for e in fast_api.history(case_id)]
    assert "timer" in actions and "return" not in actions
