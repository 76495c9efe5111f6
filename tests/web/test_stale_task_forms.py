"""A task form sent after the task left the approver's hands some other way than by a completion.

The page answering a refused completion said "此任务刚刚已由他人办理" (someone else just completed this task) whatever
the reason, and the API's message said the task "was already completed" for a task nobody completed: one returned
to the step before it, one of a cancelled case. An approver told so believes a colleague decided the case."""

from __future__ import annotations

from tests.api.support import assert_error, start_admonishment
from tests.engine.test_returns import with_return
from tests.web.test_web_shell import csrf_token, login

TAKEN = "此任务刚刚已由他人办理"


def at_conduct_talk(api) -> tuple[int, str]:
    """An admonishment case (conduct_talk returnable) waiting at conduct_talk; its id and the task's."""
    deployed = api.post("/api/processes/admonishment/versions", as_="designer",
                        data=with_return("admonishment", "conduct_talk"), content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="情况属实")
    return case_id, api.open_task(case_id, "conduct_talk")["id"]


def send_stale(client, task_id: str, token: str):
    return client.post(f"/tasks/{task_id}/complete", data={"csrf_token": token, "talk_date": "2024-05-01",
                                                           "minutes": "谈话记录"})


def test_a_form_sent_after_its_task_was_returned_says_so(client, api):
    """discipline has conduct_talk's page open; the admin returns the task to intake_review; discipline's form then
    gets a 409 saying the task was withdrawn, not that someone completed it, and nothing is recorded."""
    case_id, task_id = at_conduct_talk(api)
    login(client, "discipline")
    token = csrf_token(client, f"/tasks/{task_id}")
    returned = api.post(f"/api/tasks/{task_id}/return", json={"reason": "谈话提纲需重新审核"})
    assert returned.status_code == 200, returned.json
    response = send_stale(client, task_id, token)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and TAKEN not in html
    assert "任务已撤销或退回" in html
    assert not [e for e in api.get(f"/api/cases/{case_id}/history").json if e["action"] == "complete"
                and e["task"] == "conduct_talk"]


def test_a_form_sent_after_its_case_was_cancelled_says_so(client, api):
    """The same after the admin cancelled the case."""
    case_id, task_id = at_conduct_talk(api)
    login(client, "discipline")
    token = csrf_token(client, f"/tasks/{task_id}")
    assert api.post(f"/api/cases/{case_id}/cancel", json={"reason": "重复立案"}).status_code == 200
    response = send_stale(client, task_id, token)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and TAKEN not in html and "任务已撤销或退回" in html


def test_the_api_says_a_withdrawn_task_is_withdrawn_not_completed(api):
    """Still 409 with code conflict (API.md), and the message no longer claims a completion nobody made."""
    _case_id, task_id = at_conduct_talk(api)
    assert api.post(f"/api/tasks/{task_id}/return", json={"reason": "重新审核"}).status_code == 200
    error = assert_error(api.post(f"/api/tasks/{task_id}/complete", as_="discipline",
                                  json={"data": {"talk_date": "2024-05-01", "minutes": "谈话记录"}}), 409, "conflict")
    assert "已被办理" not in error["message"] and "任务已撤销" in error["message"]
