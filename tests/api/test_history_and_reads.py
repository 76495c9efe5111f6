"""Reads over HTTP: case history, diagram, case lists and filters, processes, cadres, cancel."""

from __future__ import annotations

from pathlib import Path

from service.config import PROJECT_ROOT
from tests.api.support import (
    ACCOUNTABILITY,
    ADMONISHMENT,
    DEPARTURE,
    STEP2_TASKS,
    VETTING,
    admonishment_to_follow_up,
    assert_error,
    finish_opinions,
    fire_after_deadline,
    sanction,
    send_objection,
    start_accountability,
    start_admonishment,
    start_departure,
    start_vetting,
    vetting_to_notice,
)

BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"


# History.

def test_history_has_start_claim_completions_message_automatic_and_end_oldest_first(api, cadre):
    """Start (starter), automatic steps (system), claim and completions (username), message, end; in order."""
    case_id = start_vetting(api)["id"]
    task = api.open_task(case_id, "solicit_family_opinion")
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="org_dept2").status_code == 200
    api.complete(case_id, "solicit_family_opinion", as_="org_dept2", opinion="positive")
    for element in ("solicit_colleague_opinion", "solicit_public_opinion"):
        api.complete(case_id, element, opinion="neutral")
    api.complete(case_id, "democratic_evaluation", votes_approve=1, votes_basic=0, votes_disapprove=0)
    api.complete(case_id, "org_head_review", decision="approve")
    send_objection(api, case_id, report="来信")
    api.complete(case_id, "verify_objection", substantiated=True)

    history = api.history(case_id)
    assert history[0]["action"] == "start" and history[0]["actor"] == "org_dept"
    assert history[0]["detail"]["data"]["proposed_post"] == "县发改局局长"
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    automatic = [e for e in history if e["action"] == "automatic"]
    assert {e["task"] for e in automatic} >= {"load_cadre_facts", "check_eligibility"}
    assert {e["actor"] for e in automatic} == {"system"}
    claims = [e for e in history if e["action"] == "claim"]
    assert [(e["actor"], e["task"]) for e in claims] == [("org_dept2", "solicit_family_opinion")]
    completions = [(e["actor"], e["task"]) for e in history if e["action"] == "complete"]
    assert completions[0] == ("org_dept2", "solicit_family_opinion")
    assert completions[-3:] == [("org_dept", "democratic_evaluation"), ("org_head", "org_head_review"),
                                ("discipline", "verify_objection")]
    complete_org_head = next(e for e in history if e.get("task") == "org_head_review")
    assert complete_org_head["detail"]["data"] == {"decision": "approve"}
    messages = [e for e in history if e["action"] == "message"]
    assert "discipline" in {e["actor"] for e in messages}
    assert history[-1]["action"] == "end" and history[-1]["actor"] == "system"
    assert history[-1]["detail"]["outcome"] == "rejected"
    actions = [e["action"] for e in history]
    assert actions.index("claim") < actions.index("complete") < actions.index("message")


def test_history_has_timer_and_escalation_by_system(fast_api, fast_services):
    """A deadline passing shows as timer and escalation entries with actor system, after the completions."""
    fast_api.create_cadre("c1")
    case_id = admonishment_to_follow_up(fast_api)
    fire_after_deadline(fast_services)
    history = fast_api.history(case_id)
    actions = [e["action"] for e in history]
    assert actions.count("timer") == 1 and actions.count("escalation") == 1
    timer = history[actions.index("timer")]
    escalation = history[actions.index("escalation")]
    assert timer["actor"] == escalation["actor"] == "system"
    assert escalation["task"] == "supervise_follow_up_review"
    last_completion = max(i for i, a in enumerate(actions) if a == "complete")
    assert last_completion < actions.index("timer")
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)


def test_history_of_unknown_case_is_404(api):
    """History of a case that does not exist → 404."""
    assert api.get("/api/cases/424242/history").status_code == 404


# Case data.

def test_case_data_keeps_results_of_parallel_branches(api, cadre):
    """Case data holds every completed task's fields under results, parallel branches included."""
    case_id = start_vetting(api)["id"]
    api.complete(case_id, "solicit_family_opinion", opinion="positive")
    api.complete(case_id, "solicit_colleague_opinion", opinion="negative")
    results = api.case(case_id)["data"]["results"]
    assert results["solicit_family_opinion"] == {"opinion": "positive"}
    assert results["solicit_colleague_opinion"] == {"opinion": "negative"}


def test_case_view_has_contract_fields(api, cadre):
    """GET /api/cases/<id> has every field of the contract; a task has every field of the contract."""
    case = api.case(start_vetting(api)["id"])
    assert {"id", "process", "process_version", "cadre_id", "status", "outcome", "data", "created_at",
            "updated_at", "parent_case_id", "child_case_ids", "open_tasks"} <= set(case)
    task = case["open_tasks"][0]
    assert {"id", "case_id", "process", "element_id", "name", "role", "assignee", "created_at", "due_at",
            "overdue", "form"} <= set(task)
    assert task["form"]["type"] == "object" and task["form"]["properties"]
    assert api.get(f"/api/tasks/{task['id']}").json["id"] == task["id"]


def test_completed_task_still_readable(api, cadre):
    """GET /api/tasks/<id> of a completed task shows it no longer open."""
    case_id = start_admonishment(api)["id"]
    task = api.open_task(case_id, "intake_review")
    api.complete(case_id, "intake_review", form="dismiss", reason="不予诫勉")
    shown = api.get(f"/api/tasks/{task['id']}").json
    assert shown["status"] == "completed" and shown["overdue"] is False


# Diagram.

def test_diagram_shows_completed_and_active_elements(api, cadre):
    """The diagram has the case's BPMN, what it completed and where it is now."""
    case_id = start_vetting(api)["id"]
    diagram = api.get(f"/api/cases/{case_id}/diagram").json
    assert 'id="pre_appointment_vetting"' in diagram["bpmn"]
    assert {"start", "load_cadre_facts", "check_eligibility"} <= set(diagram["completed"])
    assert set(diagram["active"]) >= STEP2_TASKS
    assert not STEP2_TASKS & set(diagram["completed"])
    finish_opinions(api, case_id)
    diagram = api.get(f"/api/cases/{case_id}/diagram").json
    assert set(diagram["completed"]) >= STEP2_TASKS
    assert "org_head_review" in diagram["active"]
    api.complete(case_id, "org_head_review", decision="reject")
    diagram = api.get(f"/api/cases/{case_id}/diagram").json
    assert "end_rejected" in diagram["completed"] and "org_head_review" in diagram["completed"]
    assert not STEP2_TASKS & set(diagram["active"]) and "org_head_review" not in diagram["active"]


def test_diagram_of_unknown_case_is_404(api):
    """Diagram of a case that does not exist → 404."""
    assert api.get("/api/cases/424242/diagram").status_code == 404


# Case lists.

def make_mixed_cases(api):
    api.create_cadre("c1")
    api.create_cadre("c2")
    vetting = start_vetting(api, "c1")["id"]
    dismissed = start_admonishment(api, "c1")["id"]
    api.complete(dismissed, "intake_review", form="dismiss", reason="不予诫勉")
    accountability = start_accountability(api, "c2")["id"]
    cancelled = start_admonishment(api, "c2")["id"]
    assert api.post(f"/api/cases/{cancelled}/cancel", json={"reason": "重复立案"}).status_code == 200
    departure = start_departure(api, "c2")["id"]
    return {"vetting": vetting, "dismissed": dismissed, "accountability": accountability,
            "cancelled": cancelled, "departure": departure}


def listed(api, **params):
    response = api.get("/api/cases", query_string=params)
    assert response.status_code == 200, response.json
    return response.json


def test_case_list_filters(api):
    """process, status, cadre_id filter the list (and combine); total counts what matches."""
    ids = make_mixed_cases(api)
    everything = listed(api)
    assert everything["total"] == 5 and {c["id"] for c in everything["items"]} == set(ids.values())
    assert {c["id"] for c in listed(api, process=ADMONISHMENT)["items"]} == {ids["dismissed"], ids["cancelled"]}
    assert {c["id"] for c in listed(api, status="completed")["items"]} == {ids["dismissed"]}
    assert {c["id"] for c in listed(api, status="cancelled")["items"]} == {ids["cancelled"]}
    assert {c["id"] for c in listed(api, status="open")["items"]} == {ids["vetting"], ids["accountability"],
                                                                       ids["departure"]}
    assert {c["id"] for c in listed(api, cadre_id="c1")["items"]} == {ids["vetting"], ids["dismissed"]}
    both = listed(api, cadre_id="c2", status="open")
    assert {c["id"] for c in both["items"]} == {ids["accountability"], ids["departure"]} and both["total"] == 2
    assert listed(api, process=ACCOUNTABILITY, cadre_id="c1")["total"] == 0
    assert listed(api, process=DEPARTURE)["items"][0]["status"] == "open"
    assert listed(api, overdue=1)["total"] == 0


def test_case_list_pages(api):
    """page/per_page page through the list; total stays the count of all matches; pages do not overlap."""
    ids = set(make_mixed_cases(api).values())
    pages = [listed(api, per_page=2, page=n) for n in (1, 2, 3, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    seen = [c["id"] for p in pages for c in p["items"]]
    assert len(seen) == len(set(seen)) and set(seen) == ids


def test_case_list_page_past_the_end_is_empty_as_asked(api):
    """A page past the last answers no cases and the page asked for (not the last page, unlike the web inbox), in
    the list's documented keys only."""
    make_mixed_cases(api)
    assert listed(api, per_page=2, page=9) == {"items": [], "total": 5, "page": 9, "per_page": 2}


def test_case_list_rejects_bad_parameters(api):
    """A bad status, page or per_page is a 400 naming the parameter (API.md: 400 malformed), never a 500; an
    integer is ASCII digits, not what else Python's `int` reads (full-width digits, underscores, spaces)."""
    for params, field in (({"status": "weird"}, "status"), ({"page": "abc"}, "page"), ({"page": 0}, "page"),
                          ({"page": "１"}, "page"), ({"page": "1_0"}, "page"), ({"per_page": " 5"}, "per_page"),
                          ({"page": "9" * 5000}, "page"),
                          ({"per_page": -1}, "per_page"), ({"per_page": 10**9}, "per_page")):
        response = api.get("/api/cases", query_string=params)
        assert response.status_code == 400, params
        assert field in response.json["error"]["fields"]


# Processes.

def test_process_list_has_newest_version_of_each(api):
    """GET /api/processes lists the four shipped processes, version 1, with names and deploy times."""
    processes = {p["key"]: p for p in api.get("/api/processes", as_="org_dept").json}
    assert {VETTING, ADMONISHMENT, DEPARTURE, ACCOUNTABILITY} <= set(processes)
    assert processes[VETTING]["name"] == "任前监督"
    assert all(p["version"] == 1 and p["deployed_at"] for p in processes.values())


def test_process_detail_and_bpmn(api):
    """GET /api/processes/<key> has versions; /bpmn?version=1 returns the XML; unknowns are 404."""
    detail = api.get(f"/api/processes/{ACCOUNTABILITY}").json
    assert detail["key"] == ACCOUNTABILITY and detail["version"] == 1
    assert [v["version"] for v in detail["versions"]] == [1]
    response = api.get(f"/api/processes/{ACCOUNTABILITY}/bpmn", query_string={"version": 1})
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert b'id="accountability"' in response.data
    assert api.get(f"/api/processes/{ACCOUNTABILITY}/bpmn").data == response.data
    assert api.get(f"/api/processes/{ACCOUNTABILITY}/bpmn", query_string={"version": 7}).status_code == 404
    assert api.get("/api/processes/no_such_process").status_code == 404
    assert api.get("/api/processes/no_such_process/bpmn").status_code == 404
    assert api.get(f"/api/processes/{ACCOUNTABILITY}/bpmn", query_string={"version": "x"}).status_code == 400


def test_new_version_for_new_cases_running_cases_keep_theirs(api, cadre):
    """A deployed version 2 is used by new cases; a running case stays on version 1 and still finishes."""
    running = start_admonishment(api)["id"]
    original = (BPMN_DIR / "admonishment.bpmn").read_text(encoding="utf-8")
    changed = original.replace('name="受理审核"', 'name="受理审核（第二版）"', 1)
    assert changed != original
    response = api.post(f"/api/processes/{ADMONISHMENT}/versions", as_="designer", data=changed.encode(),
                        content_type="application/xml")
    assert response.status_code == 201, response.json
    assert (response.json["key"], response.json["version"]) == (ADMONISHMENT, 2)
    detail = api.get(f"/api/processes/{ADMONISHMENT}").json
    assert detail["version"] == 2 and [v["version"] for v in detail["versions"]] == [1, 2]
    old_xml = api.get(f"/api/processes/{ADMONISHMENT}/bpmn", query_string={"version": 1}).data.decode()
    assert "第二版" not in old_xml
    assert "第二版" in api.get(f"/api/processes/{ADMONISHMENT}/bpmn", query_string={"version": 2}).data.decode()
    fresh = start_admonishment(api)
    assert fresh["process_version"] == 2 and fresh["open_tasks"][0]["name"] == "受理审核（第二版）"
    old = api.case(running)
    assert old["process_version"] == 1 and old["open_tasks"][0]["name"] == "受理审核"
    case = api.complete(running, "intake_review", form="dismiss", reason="不予诫勉")
    assert (case["outcome"], case["process_version"]) == ("dismissed", 1)


# Cadres.

def test_cadre_shows_sanctions_cleared_audits_and_cases(api, cadre):
    """GET /api/cadres/<id> has the record, its sanctions, cleared audits and cases."""
    sanctioned = sanction(api, "removal")
    assert sanctioned["child_case_ids"] == []  # the committee completed it and may not read the departure audit
    departure_id = api.case(sanctioned["id"])["child_case_ids"][0]
    api.complete(departure_id, "assign_audit_team", team_lead="audit")
    api.complete(departure_id, "audit_fieldwork", findings="none", report_ref="R")
    shown = api.cadre("c1")
    assert {"id", "name", "unit", "post", "post_level", "post_started_on", "promotion_ban_until"} <= set(shown)
    assert [(s["sanction"], s["case_id"]) for s in shown["sanctions"]] == [("removal", sanctioned["id"])]
    assert [a["case_id"] for a in shown["cleared_audits"]] == [departure_id]
    assert {(c["id"], c["process"], c["status"]) for c in shown["cases"]} == {
        (sanctioned["id"], ACCOUNTABILITY, "completed"), (departure_id, DEPARTURE, "open")}
    assert [c["id"] for c in api.get("/api/cadres", as_="discipline").json] == ["c1"]


def test_cadre_created_with_given_fields(api):
    """POST /api/cadres returns the cadre with empty sanctions, audits and cases; id generated when absent."""
    created = api.create_cadre("c9", post_level="middle", name="李四")
    assert (created["id"], created["name"], created["post_level"], created["post_started_on"]) == (
        "c9", "李四", "middle", "2015-03-01")
    assert created["sanctions"] == [] and created["cleared_audits"] == [] and created["cases"] == []
    response = api.post("/api/cadres", as_="org_dept", json={"name": "王五", "unit": "县审计局", "post": "科员",
                                                             "post_level": "staff", "post_started_on": "2020-01-01"})
    assert response.status_code == 201 and response.json["id"]
    assert api.get(f"/api/cadres/{response.json['id']}").json["name"] == "王五"


def test_patch_name_and_unit_but_not_post(api, cadre):
    """PATCH name/unit works; post or post_level → 409 and nothing changes."""
    response = api.patch("/api/cadres/c1", as_="org_dept", json={"name": "张三丰", "unit": "县委办"})
    assert response.status_code == 200
    assert (response.json["name"], response.json["unit"]) == ("张三丰", "县委办")
    for body in ({"post": "局长"}, {"post_level": "staff"}, {"name": "改名", "post": "局长"}):
        response = api.patch("/api/cadres/c1", as_="org_dept", json=body)
        assert response.status_code == 409, body
        assert response.json["error"]["code"] == "conflict"
    shown = api.cadre()
    assert (shown["name"], shown["unit"]) == ("张三丰", "县委办")
    assert (shown["post"], shown["post_level"]) == ("副局长", "leading")


def test_patching_an_unknown_cadre_is_404_whatever_the_body(api, cadre):
    """The post rule (409) is about a cadre the caller may read: an unknown id is 404 first, like any read."""
    for as_ in ("org_dept", "admin"):
        for body in ({"post": "局长"}, {"post_level": "staff"}, {"name": "改名"}, {"nickname": "x"}):
            assert_error(api.patch("/api/cadres/nosuchcadre", as_=as_, json=body), 404, "not_found")
    assert_error(api.patch("/api/cadres/c1", as_="org_dept", json={"post": "局长"}), 409, "conflict")


# Cancel.

def test_cancel_closes_case_and_its_tasks(api, cadre):
    """Admin cancel → status cancelled, no open tasks, tasks gone from inboxes, 409 on completing them."""
    case_id = start_vetting(api)["id"]
    task = api.open_task(case_id, "democratic_evaluation")
    response = api.post(f"/api/cases/{case_id}/cancel", json={"reason": "拟任人选调整"})
    assert response.status_code == 200
    assert (response.json["status"], response.json["open_tasks"]) == ("cancelled", [])
    assert api.inbox("org_dept", case_id=case_id) == []
    assert api.get(f"/api/tasks/{task['id']}").json["status"] != "open"
    response = api.complete_raw(task["id"], "org_dept", {"votes_approve": 1, "votes_basic": 0, "votes_disapprove": 0})
    assert response.status_code == 409
    cancel = [e for e in api.history(case_id) if e["action"] == "cancel"]
    assert [(e["actor"], e["detail"]["reason"]) for e in cancel] == [("admin", "拟任人选调整")]
    assert listed(api, status="cancelled")["total"] == 1


def test_cancel_a_waiting_case_stops_its_timer_and_messages(api, cadre):
    """A case cancelled during its public notice takes no message and has no timer left."""
    case_id = vetting_to_notice(api)
    case = api.post(f"/api/cases/{case_id}/cancel", json={"reason": "撤回"}).json
    assert case["status"] == "cancelled" and case["next_timer_due"] is None
    assert send_objection(api, case_id).status_code == 409
