"""What `POST /api/cases` answers a starter: the whole case to one who may read it, and to a starter whose roles
own no lane of the process (org_dept starting an admonishment) only what it may know: the case's id and process
and what it sent; never its status, the tasks of other lanes, their holders, the outcome, incident or links."""

from __future__ import annotations

from tests.api.support import ADMONISHMENT, VETTING, assert_error, sanction

SENT = {"trigger": "complaint", "summary": "群众反映工作作风问题"}


def test_a_starter_who_may_not_read_the_case_gets_only_what_it_sent(api, cadre):
    response = api.post("/api/cases", as_="org_dept", json={"process": ADMONISHMENT, "cadre_id": "c1", "data": SENT})
    assert response.status_code == 201, response.json
    case_id = response.json["id"]
    assert_error(api.get(f"/api/cases/{case_id}", as_="org_dept"), 404)  # the need-to-know rule it answers to
    assert response.json == {"id": case_id, "process": ADMONISHMENT, "cadre_id": "c1",
                             "data": {"cadre_id": "c1", **SENT}}
    whole = api.get(f"/api/cases/{case_id}", as_="discipline").json
    assert [t["element_id"] for t in whole["open_tasks"]] == ["intake_review"]  # what it was not told


def test_a_starter_who_may_read_the_case_gets_the_whole_case(api, cadre):
    response = api.post("/api/cases", as_="discipline", json={"process": ADMONISHMENT, "cadre_id": "c1", "data": SENT})
    assert response.status_code == 201, response.json
    whole = api.get(f"/api/cases/{response.json['id']}", as_="discipline").json
    assert {key: response.json[key] for key in ("id", "process", "status", "data", "outcome", "incident")} == \
        {key: whole[key] for key in ("id", "process", "status", "data", "outcome", "incident")}
    assert [t["element_id"] for t in response.json["open_tasks"]] == ["intake_review"]


def test_a_case_that_ended_at_once_does_not_tell_a_blind_starter_so(api, cadre):
    """audit, made a starter of vetting (it owns no lane there), starts one for a banned cadre: the case ends at once
    as ineligible. A status `completed` would tell what a start rule's refusal is kept from saying (the cadre's ban)."""
    sanction(api, "removal")
    assert api.put(f"/api/processes/{VETTING}/starters", json={"roles": ["org_dept", "audit"]}).status_code == 200
    response = api.post("/api/cases", as_="audit", json={
        "process": VETTING, "cadre_id": "c1", "data": {"proposed_post": "局长", "selection_method": "competitive"}})
    assert response.status_code == 201, response.json
    assert api.get(f"/api/cases/{response.json['id']}", as_="discipline").json["status"] == "completed"
    assert set(response.json) == {"id", "process", "cadre_id", "data"}
