"""The web inbox and a task of a case held as an incident, as the API (tests/api/test_claims_and_inbox.py): left out
of the inbox, listed under 只看暂停案件的任务 (`held=1`) marked so and without a claim button, a claim refused saying
an admin must retry the case."""

from __future__ import annotations

from tests.api.support import hold_in_incident, start_admonishment
from tests.web.test_web_shell import csrf_token, login


def test_a_task_of_a_held_case_is_left_out_of_the_inbox_and_not_claimed(api, client, services):
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    task = api.open_task(case_id, "intake_review")
    hold_in_incident(services, case_id)
    login(client, "discipline")
    row = f'data-task-id="{task["id"]}"'
    assert row not in client.get("/inbox").get_data(as_text=True)
    held = client.get("/inbox?held=1").get_data(as_text=True)
    assert row in held and "暂停待重试" in held
    assert f'/tasks/{task["id"]}/claim' not in held
    task_page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert f'/tasks/{task["id"]}/claim' not in task_page and "须由管理员重试后方可办理此任务" in task_page
    token = csrf_token(client, f"/tasks/{task['id']}")
    response = client.post(f"/tasks/{task['id']}/claim", data={"csrf_token": token}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "须由管理员重试" in page
    assert api.get(f"/api/tasks/{task['id']}").json["assignee"] is None


def test_a_held_task_page_offers_only_what_works_and_an_extension_says_why_not(api, client, services):
    """The head's page of a held task offers no extension nor return (each a step on the held case) but still the
    reassignment, the admin's and head's repair; an extension posted all the same says an admin must retry."""
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    task = api.open_task(case_id, "intake_review")
    hold_in_incident(services, case_id)
    login(client, "discipline_head")
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert f'/tasks/{task["id"]}/assign' in page
    assert f'/tasks/{task["id"]}/extend' not in page and f'/tasks/{task["id"]}/return' not in page
    token = csrf_token(client, f"/tasks/{task['id']}")
    response = client.post(f"/tasks/{task['id']}/extend", follow_redirects=True,
                           data={"csrf_token": token, "until": "2099-01-01", "reason": "补充材料"})
    assert "须由管理员重试后方可办理其任务" in response.get_data(as_text=True)  # the refusal's, not the page's note
    assert api.get(f"/api/tasks/{task['id']}").json["due_at"] == task["due_at"]
