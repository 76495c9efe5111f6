"""The inbox (GET /api/tasks), claim and unclaim."""

from __future__ import annotations

import time

from service.usecases.timers import fire_due_timers
from tests.api.support import (
    ADMONISHMENT,
    DEPARTURE,
    STEP2_TASKS,
    TIMER_WAIT,
    VETTING,
    admonishment_to_follow_up,
    assert_error,
    departure_to_fieldwork,
    hold_in_incident,
    start_admonishment,
    start_departure,
    start_vetting,
)


def elements(tasks):
    return sorted(t["element_id"] for t in tasks)


def claim(api, task_id, as_):
    return api.post(f"/api/tasks/{task_id}/claim", as_=as_)


def unclaim(api, task_id, as_):
    return api.post(f"/api/tasks/{task_id}/unclaim", as_=as_)


def test_inbox_shows_only_the_callers_lanes(api, cadre):
    """Each role sees the open tasks of its own lane only; a user with two roles sees both; admin sees all."""
    vetting = start_vetting(api)["id"]
    admonishment = start_admonishment(api)["id"]
    departure = start_departure(api)["id"]
    assert elements(api.inbox("org_dept")) == sorted(STEP2_TASKS)
    assert {t["case_id"] for t in api.inbox("org_dept")} == {vetting}
    assert [(t["element_id"], t["case_id"]) for t in api.inbox("discipline")] == [("intake_review", admonishment)]
    assert [(t["element_id"], t["case_id"]) for t in api.inbox("audit_head")] == [("assign_audit_team", departure)]
    for role in ("org_head", "committee", "discipline_head", "audit"):
        assert api.inbox(role) == [], role
    assert api.get("/api/tasks", as_="designer").status_code == 403  # designers hold no tasks
    assert elements(api.inbox("multi")) == ["intake_review"]
    assert len(api.inbox("admin")) == 6
    task = api.inbox("discipline")[0]
    assert {"id", "case_id", "process", "element_id", "name", "role", "assignee", "created_at", "due_at",
            "overdue", "form"} <= set(task)
    assert (task["process"], task["role"], task["name"], task["assignee"]) == (ADMONISHMENT, "discipline", "受理审核",
                                                                               None)


def test_inbox_filters_by_case_and_process(api, cadre):
    """case_id and process narrow the inbox."""
    first = start_vetting(api)["id"]
    second = start_vetting(api)["id"]
    start_departure(api)
    assert {t["case_id"] for t in api.inbox("org_dept", case_id=first)} == {first}
    assert len(api.inbox("org_dept", case_id=second)) == 4
    assert len(api.inbox("admin", process=VETTING)) == 8
    assert elements(api.inbox("admin", process=DEPARTURE)) == ["assign_audit_team"]
    assert api.inbox("org_dept", process=DEPARTURE) == []
    assert api.inbox("org_dept", case_id=987654) == []
    assert_error(api.get("/api/tasks", as_="org_dept", query_string={"case_id": "abc"}), 400)


def test_assigned_task_shows_only_to_its_assignee(api, cadre):
    """A task assigned to a user (audit_fieldwork → team lead) is in that user's inbox, not the role's others."""
    case_id = departure_to_fieldwork(api, team_lead="audit2")
    assert elements(api.inbox("audit2")) == ["audit_fieldwork"]
    assert api.inbox("audit") == [] and api.inbox("multi") == []
    assert api.inbox("audit2")[0]["case_id"] == case_id


def test_claimed_task_leaves_other_inboxes_and_they_get_403(api, cadre):
    """Once claimed, a task shows only to its holder; others of the role get 403 completing it, 409 claiming it."""
    case_id = start_admonishment(api)["id"]
    task_id = api.open_task(case_id, "intake_review")["id"]
    response = claim(api, task_id, "discipline2")
    assert response.status_code == 200 and response.json["assignee"] == "discipline2"
    assert claim(api, task_id, "discipline2").status_code == 200  # claiming one's own task again is fine
    assert api.inbox("discipline") == [] and api.inbox("multi") == []
    assert [t["id"] for t in api.inbox("discipline2")] == [task_id]
    assert_error(api.complete_raw(task_id, "discipline", {"form": "dismiss", "reason": "x"}), 403, "forbidden")
    assert_error(claim(api, task_id, "discipline"), 409, "conflict")
    assert_error(unclaim(api, task_id, "discipline"), 403, "forbidden")
    assert api.open_elements(case_id) == ["intake_review"]
    response = api.complete_raw(task_id, "discipline2", {"form": "dismiss", "reason": "不予诫勉"})
    assert response.status_code == 200 and response.json["outcome"] == "dismissed"
    done = api.get(f"/api/tasks/{task_id}").json
    assert (done["status"], done["completed_by"]) == ("completed", "discipline2")


def test_unclaim_gives_the_task_back(api, cadre):
    """The holder unclaims: the task returns to every inbox of the role and another user may take it."""
    case_id = start_admonishment(api)["id"]
    task_id = api.open_task(case_id, "intake_review")["id"]
    claim(api, task_id, "discipline")
    response = unclaim(api, task_id, "discipline")
    assert response.status_code == 200 and response.json["assignee"] is None
    assert [t["id"] for t in api.inbox("discipline2")] == [task_id]
    assert claim(api, task_id, "discipline2").status_code == 200
    assert api.complete_raw(task_id, "discipline2", {"form": "talk", "reason": "属实"}).status_code == 200
    actions = [(e["action"], e["actor"]) for e in api.history(case_id) if e["action"] in ("claim", "unclaim")]
    assert actions == [("claim", "discipline"), ("unclaim", "discipline"), ("claim", "discipline2")]
    unclaimed = next(e for e in api.history(case_id) if e["action"] == "unclaim")
    assert unclaimed["detail"] == {"task_id": task_id, "from": "discipline"}


def test_claim_or_unclaim_of_a_closed_task_is_409(api, cadre):
    """A completed task can be neither claimed nor unclaimed."""
    case_id = start_admonishment(api)["id"]
    task_id = api.open_task(case_id, "intake_review")["id"]
    api.complete_raw(task_id, "discipline", {"form": "dismiss", "reason": "x"})
    assert_error(claim(api, task_id, "discipline"), 409, "conflict")
    assert_error(unclaim(api, task_id, "discipline"), 409, "conflict")


def test_claim_of_another_roles_task_is_403(api, cadre):
    """Claiming a task of a lane one does not belong to → 403."""
    task_id = api.open_task(start_vetting(api)["id"], "democratic_evaluation")["id"]
    assert_error(claim(api, task_id, "discipline"), 403, "forbidden")
    assert api.get(f"/api/tasks/{task_id}").json["assignee"] is None


def test_overdue_filter(fast_api, patient_api, fast_services):
    """overdue=1 keeps the tasks past their due time (before and after the timer fires) and only those."""
    api = fast_api
    api.create_cadre("c1")
    late = admonishment_to_follow_up(api)
    fresh = start_admonishment(api)["id"]  # intake_review has no deadline
    waiting = admonishment_to_follow_up(patient_api)  # follow_up_review due in 30 days: never overdue here
    time.sleep(TIMER_WAIT)
    overdue = api.inbox("discipline", overdue=1)
    assert [(t["case_id"], t["element_id"]) for t in overdue] == [(late, "follow_up_review")]
    assert [c["id"] for c in api.get("/api/cases", query_string={"overdue": 1}).json["items"]] == [late]
    fire_due_timers(fast_services)
    overdue = api.inbox("discipline", overdue=1)
    assert [(t["case_id"], t["element_id"], t["overdue"]) for t in overdue] == [(late, "follow_up_review", True)]
    assert {t["case_id"] for t in api.inbox("discipline")} == {late, fresh, waiting}
    assert api.inbox("discipline_head", overdue=1) == []
    assert elements(api.inbox("discipline_head")) == ["supervise_follow_up_review"]
    api.complete(late, "follow_up_review", rectified="yes")
    assert api.inbox("discipline", overdue=1) == []
    assert api.get("/api/cases", query_string={"overdue": 1}).json["total"] == 0


def test_a_task_of_a_case_held_as_an_incident_is_not_offered_nor_claimed(api, services, cadre):
    """Its case waits for a retry, so nobody can complete the task: the inbox leaves it out (and `held=1` lists
    those, for whoever must see what waits), and a claim is refused as a completion is (409, saying an admin must
    retry the case), nothing recorded. Once retried, the task is offered and claimed again."""
    case_id = start_admonishment(api)["id"]
    task = api.open_task(case_id, "intake_review")
    hold_in_incident(services, case_id)
    assert task["id"] not in {t["id"] for t in api.get("/api/tasks", as_="discipline").json}
    assert [t["id"] for t in api.get("/api/tasks?held=1", as_="discipline").json] == [task["id"]]
    assert [t["id"] for t in api.get("/api/tasks?held=1", as_="admin").json] == [task["id"]]
    before = len(api.history(case_id))
    message = assert_error(claim(api, task["id"], "discipline"), 409)["message"]
    assert "incident" in message and "重试" in message
    assert api.get(f"/api/tasks/{task['id']}").json["assignee"] is None and len(api.history(case_id)) == before
    assert api.post(f"/api/cases/{case_id}/retry", as_="admin").status_code == 200
    assert task["id"] in {t["id"] for t in api.get("/api/tasks", as_="discipline").json}
    assert api.get("/api/tasks?held=1", as_="discipline").json == []
    assert claim(api, task["id"], "discipline").status_code == 200


def test_a_task_of_a_case_held_as_an_incident_is_handed_on_but_not_extended_nor_returned(api, services, cadre):
    """While its case waits for a retry, an extension or a return would run a step on the held case: each is
    refused as a claim is (409, saying an admin must retry the case), nothing recorded. Giving the task back
    (unclaim) or to another holder of its lane (assign, the admin's repair) runs no step and is allowed."""
    case_id = start_admonishment(api)["id"]
    task = api.open_task(case_id, "intake_review")
    assert claim(api, task["id"], "discipline").status_code == 200
    hold_in_incident(services, case_id)
    before = len(api.history(case_id))
    for path, as_, body in (("extend", "discipline_head", {"until": "2099-01-01", "reason": "补充材料"}),
                            ("return", "discipline", {"reason": "退回重办"})):
        message = assert_error(api.post(f"/api/tasks/{task['id']}/{path}", as_=as_, json=body), 409)["message"]
        assert "incident" in message and "重试" in message, (path, message)
    assert len(api.history(case_id)) == before
    assert unclaim(api, task["id"], "discipline").status_code == 200
    assigned = api.post(f"/api/tasks/{task['id']}/assign", as_="admin", json={"username": "discipline2"})
    assert assigned.status_code == 200 and assigned.json["assignee"] == "discipline2"
    assert [e["action"] for e in api.history(case_id)[before:]] == ["unclaim", "assign"]
