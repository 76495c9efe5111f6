"""Departure audit (离任经济责任审计) over HTTP: team lead, findings, referral, clearance, departure."""

from __future__ import annotations

from tests.api.support import (
    ACCOUNTABILITY,
    departure_to_fieldwork,
    fire_after_deadline,
    start_departure,
)


def fieldwork(api, case_id, as_="audit2", **data):
    task = api.open_task(case_id, "audit_fieldwork")
    response = api.complete_raw(task["id"], as_, data)
    assert response.status_code == 200, response.json
    return response.json


def test_assign_audit_team_is_audit_head_task(api, cadre):
    """A new case waits for assign_audit_team by audit_head."""
    case = start_departure(api)
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("assign_audit_team", "audit_head")]
    assert case["data"]["departure_reason"] == "promotion"


def test_team_lead_must_be_an_audit_user(api, cadre):
    """team_lead naming a non-audit user or nobody → 422 on team_lead; the task stays open."""
    case_id = start_departure(api)["id"]
    task = api.open_task(case_id, "assign_audit_team")
    for lead in ("org_dept", "nobody", "norole"):
        response = api.complete_raw(task["id"], "audit_head", {"team_lead": lead})
        assert response.status_code == 422, lead
        assert set(response.json["error"]["fields"]) == {"team_lead"}
    assert api.open_elements(case_id) == ["assign_audit_team"]
    response = api.complete_raw(task["id"], "audit_head", {"team_lead": "multi"})  # holds audit among others
    assert response.status_code == 200


def test_fieldwork_is_assigned_to_the_team_lead_only(api, cadre):
    """audit_fieldwork goes to the team lead: only that user sees and completes it; another audit user 403."""
    case_id = departure_to_fieldwork(api, team_lead="audit2")
    task = api.open_task(case_id, "audit_fieldwork")
    assert (task["role"], task["assignee"]) == ("audit", "audit2")
    assert task["id"] in {t["id"] for t in api.inbox("audit2")}
    assert task["id"] not in {t["id"] for t in api.inbox("audit")}
    response = api.complete_raw(task["id"], "audit", {"findings": "none", "report_ref": "审报〔2024〕1号"})
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="audit").status_code in (403, 409)
    assert api.open_elements(case_id) == ["audit_fieldwork"]
    fieldwork(api, case_id, findings="none", amount_involved=0, report_ref="审报〔2024〕1号")
    assert api.open_elements(case_id) == ["approve_departure"]


def test_no_findings_cleared_and_approved_departure_empties_post(api, cadre):
    """findings none → cleared audit on the cadre → approve → post empty, outcome departed."""
    case_id = departure_to_fieldwork(api)
    case = fieldwork(api, case_id, findings="none", report_ref="审报〔2024〕1号")
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("approve_departure", "org_dept")]
    cleared = api.cadre()["cleared_audits"]
    assert [a["case_id"] for a in cleared] == [case_id]
    assert api.cadre()["post"] == "副局长"  # audit first, then departure
    case = api.complete(case_id, "approve_departure", decision="approve", comment="同意")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "departed", [])
    assert api.cadre()["post"] == ""


def test_hold_keeps_the_post(api, cadre):
    """approve_departure hold → outcome held; the cadre keeps the post; the audit is still cleared."""
    case_id = departure_to_fieldwork(api)
    fieldwork(api, case_id, findings="none", report_ref="R1")
    case = api.complete(case_id, "approve_departure", decision="hold", comment="暂缓")
    assert (case["status"], case["outcome"]) == ("completed", "held")
    cadre = api.cadre()
    assert cadre["post"] == "副局长" and [a["case_id"] for a in cadre["cleared_audits"]] == [case_id]


def test_minor_findings_loop_until_rectified(api, cadre):
    """findings minor → rectify_findings (audit); false opens it again; true → cleared → approve_departure."""
    case_id = departure_to_fieldwork(api)
    case = fieldwork(api, case_id, findings="minor", amount_involved=12000.5, report_ref="R2")
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("rectify_findings", "audit")]
    first = case["open_tasks"][0]["id"]
    case = api.complete(case_id, "rectify_findings", rectified=False)
    assert [t["element_id"] for t in case["open_tasks"]] == ["rectify_findings"]
    assert case["open_tasks"][0]["id"] != first
    assert api.cadre()["cleared_audits"] == []
    case = api.complete(case_id, "rectify_findings", rectified=True)
    assert [t["element_id"] for t in case["open_tasks"]] == ["approve_departure"]
    assert [a["case_id"] for a in api.cadre()["cleared_audits"]] == [case_id]
    assert case["data"]["amount_involved"] == 12000.5


def test_major_findings_refer_to_accountability(api, cadre):
    """findings major → a linked accountability case (audit_referral) opens, and the departure goes on."""
    case_id = departure_to_fieldwork(api)
    case = fieldwork(api, case_id, findings="major", amount_involved=5_000_000, report_ref="审报〔2024〕9号")
    assert [t["element_id"] for t in case["open_tasks"]] == ["approve_departure"]
    assert case["child_case_ids"] == []  # the auditor may not read the accountability case it opened
    children = api.case(case_id)["child_case_ids"]
    assert len(children) == 1
    child = api.case(children[0])
    assert (child["process"], child["status"], child["cadre_id"]) == (ACCOUNTABILITY, "open", "c1")
    assert child["parent_case_id"] == case_id
    assert child["data"]["source"] == "audit_referral"
    assert [t["element_id"] for t in child["open_tasks"]] == ["preliminary_verification"]
    assert [a["case_id"] for a in api.cadre()["cleared_audits"]] == [case_id]


def test_fieldwork_escalates_to_audit_head(fast_api, fast_services):
    """Fieldwork past its deadline → supervise_audit_fieldwork for audit_head; fieldwork marked overdue."""
    api = fast_api
    api.create_cadre("c1")
    case_id = departure_to_fieldwork(api)
    assert fire_after_deadline(fast_services) == 1
    assert api.open_elements(case_id) == ["audit_fieldwork", "supervise_audit_fieldwork"]
    supervise = api.open_task(case_id, "supervise_audit_fieldwork")
    assert supervise["role"] == "audit_head"
    mine = {t["element_id"]: t for t in api.inbox("audit2", case_id=case_id)}
    assert mine["audit_fieldwork"]["overdue"] is True and mine["audit_fieldwork"]["assignee"] == "audit2"
    assert [t["element_id"] for t in api.inbox("audit_head", overdue=1)] == []
    assert case_id in {c["id"] for c in api.get("/api/cases", query_string={"overdue": 1}).json["items"]}
    escalations = [e for e in api.history(case_id) if e["action"] == "escalation"]
    assert escalations and escalations[0]["actor"] == "system"
    api.complete(case_id, "supervise_audit_fieldwork", instruction="加快进度")
    fieldwork(api, case_id, findings="none", report_ref="R3")
    case = api.complete(case_id, "approve_departure", decision="approve")
    assert case["outcome"] == "departed"
