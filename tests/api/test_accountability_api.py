"""Accountability (问责) over HTTP: verification, the sanction ladder, the committee, sanctions and departures."""

from __future__ import annotations

from datetime import date

import pytest

import workflows.glue as glue
from tests.api.support import (
    DEPARTURE,
    accountability_to_review,
    assert_error,
    fire_after_deadline,
    six_months_after,
    start_accountability,
    start_vetting,
)
from tests.contract import LEAVES_POST, SANCTION_TABLE


def test_unfounded_ends_without_sanction(api, cadre):
    """founded false at preliminary verification → outcome unfounded, nothing on the cadre."""
    case = start_accountability(api)
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("preliminary_verification", "discipline")]
    case = api.complete(case["id"], "preliminary_verification", founded=False, notes="查无实据")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "unfounded", [])
    cadre = api.cadre()
    assert cadre["sanctions"] == [] and cadre["promotion_ban_until"] is None


def test_founded_opens_investigation(api, cadre):
    """founded true → investigation (discipline) with a deadline."""
    case_id = start_accountability(api)["id"]
    case = api.complete(case_id, "preliminary_verification", founded=True)
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("investigation", "discipline")]
    assert case["open_tasks"][0]["due_at"]


@pytest.mark.parametrize(("circumstance", "loss", "proposed"), SANCTION_TABLE)
def test_sanction_ladder_proposes(api, cadre, circumstance, loss, proposed):
    """The DMN ladder proposes the seed's sanction for each circumstance and loss; committee reviews it."""
    case_id = accountability_to_review(api, circumstance, loss)
    case = api.case(case_id)
    assert case["data"]["proposed_sanction"] == proposed
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("committee_review", "committee")]


def test_approved_sanction_recorded_with_six_month_ban_and_blocks_vetting(api, cadre):
    """approve → sanctioned; sanction on the cadre dated today; ban today + 6 months; vetting ineligible."""
    services = api.client.application.extensions["cadreflow"]
    today = services.today()
    case_id = accountability_to_review(api, "serious", "none")
    case = api.complete(case_id, "committee_review", decision="approve")
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", "sanctioned", [])
    assert case["data"]["final_sanction"] == "suspension"
    cadre = api.cadre()
    assert cadre["sanctions"] == [{"sanction": "suspension", "case_id": case_id, "decided_on": today.isoformat()}]
    assert cadre["promotion_ban_until"] == six_months_after(today).isoformat()
    assert cadre["post"] == "副局长"
    vetting = start_vetting(api)
    assert (vetting["status"], vetting["outcome"]) == ("completed", "ineligible")
    assert vetting["data"]["ineligible_reason"] == "promotion_ban"


@pytest.mark.parametrize(("today", "ban"), [("2025-08-31", "2026-02-28"), ("2023-08-31", "2024-02-29"),
                                            ("2025-12-15", "2026-06-15"), ("2025-07-01", "2026-01-01")])
def test_ban_is_six_calendar_months(api, services, cadre, today, ban):
    """The ban runs six calendar months from the decision, clamped to the end of a shorter month."""
    services.today = lambda: date.fromisoformat(today)
    case_id = accountability_to_review(api, "minor", "none")
    api.complete(case_id, "committee_review", decision="approve")
    cadre = api.cadre()
    assert cadre["promotion_ban_until"] == ban
    assert cadre["sanctions"][0]["decided_on"] == today


def test_approve_applies_the_proposal_not_a_submitted_sanction(api, cadre):
    """approve applies the proposed sanction even if the form also carries another final_sanction."""
    case_id = accountability_to_review(api, "minor", "none")
    case = api.complete(case_id, "committee_review", decision="approve", final_sanction="removal")
    assert (case["outcome"], case["data"]["final_sanction"], case["child_case_ids"]) == (
        "sanctioned", "public_apology", [])
    assert [s["sanction"] for s in api.cadre()["sanctions"]] == ["public_apology"]


def test_adjust_requires_final_sanction(api, cadre):
    """adjust without final_sanction → 422 on final_sanction; with it, that sanction is applied."""
    case_id = accountability_to_review(api, "grave", "severe")
    task = api.open_task(case_id, "committee_review")
    response = api.complete_raw(task["id"], "committee", {"decision": "adjust"})
    assert response.status_code == 422
    assert "final_sanction" in response.json["error"]["fields"]
    response = api.complete_raw(task["id"], "committee", {"decision": "adjust", "final_sanction": "demotion"})
    assert response.status_code == 422 and "final_sanction" in response.json["error"]["fields"]
    case = api.complete(case_id, "committee_review", decision="adjust", final_sanction="public_apology")
    assert (case["outcome"], case["data"]["proposed_sanction"], case["data"]["final_sanction"]) == (
        "sanctioned", "removal", "public_apology")
    assert case["child_case_ids"] == []
    assert [s["sanction"] for s in api.cadre()["sanctions"]] == ["public_apology"]


def test_reject_means_no_sanction(api, cadre):
    """reject → outcome no_sanction; no sanction, no ban, vetting eligible again."""
    case_id = accountability_to_review(api, "grave", "severe")
    case = api.complete(case_id, "committee_review", decision="reject")
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", "no_sanction", [])
    cadre = api.cadre()
    assert cadre["sanctions"] == [] and cadre["promotion_ban_until"] is None
    assert start_vetting(api)["status"] == "open"


def test_a_sanction_sent_with_reject_is_refused_not_kept_as_final(api, cadre):
    """final_sanction is the sanction applied; with reject none is. A sanction sent with reject was kept in the
    case data as its final_sanction (免职 on a case that sanctioned nobody): now a 422 naming the field, nothing
    stored, and the committee decides again."""
    case_id = accountability_to_review(api, "grave", "severe")
    task = api.open_task(case_id, "committee_review")
    error = assert_error(api.complete_raw(task["id"], "committee", {"decision": "reject", "final_sanction": "removal"}),
                         422, fields={"final_sanction"})
    assert error["fields"]["final_sanction"] == "按所选的其他选项，此项应留空 (must be left out for the choices made)"
    assert api.open_elements(case_id) == ["committee_review"]
    case = api.complete(case_id, "committee_review", decision="reject")
    assert case["outcome"] == "no_sanction" and "final_sanction" not in case["data"]


@pytest.mark.parametrize("final", ["public_apology", "suspension", *LEAVES_POST])
def test_only_resignation_or_removal_opens_a_departure_audit(api, cadre, final):
    """resign_voluntarily / ordered_resignation / removal open a linked departure_audit (accountability)."""
    case_id = accountability_to_review(api, "minor", "none")
    case = api.complete(case_id, "committee_review", decision="adjust", final_sanction=final)
    assert (case["outcome"], case["data"]["final_sanction"]) == ("sanctioned", final)
    children = api.case(case_id)["child_case_ids"]
    assert case["child_case_ids"] == []  # the committee may not read the departure audit it opened
    if final not in LEAVES_POST:
        assert children == []
        return
    assert len(children) == 1
    child = api.case(children[0])
    assert (child["process"], child["status"], child["cadre_id"]) == (DEPARTURE, "open", "c1")
    assert child["parent_case_id"] == case_id
    assert child["data"]["departure_reason"] == "accountability"
    assert [(t["element_id"], t["role"]) for t in child["open_tasks"]] == [("assign_audit_team", "audit_head")]


def test_removal_departure_audit_runs_to_departure(api, cadre):
    """The child departure audit of a removal, once approved, empties the post and records a cleared audit."""
    case_id = accountability_to_review(api, "grave", "severe")
    parent = api.complete(case_id, "committee_review", decision="approve")
    assert parent["data"]["final_sanction"] == "removal"
    child_id = api.case(case_id)["child_case_ids"][0]
    api.complete(child_id, "assign_audit_team", team_lead="audit")
    fieldwork = api.open_task(child_id, "audit_fieldwork")
    assert fieldwork["assignee"] == "audit"
    api.complete(child_id, "audit_fieldwork", findings="none", report_ref="审报〔2024〕7号")
    child = api.complete(child_id, "approve_departure", decision="approve")
    assert (child["status"], child["outcome"]) == ("completed", "departed")
    cadre = api.cadre()
    assert cadre["post"] == ""
    assert [a["case_id"] for a in cadre["cleared_audits"]] == [child_id]
    assert [(s["sanction"], s["case_id"]) for s in cadre["sanctions"]] == [("removal", case_id)]
    assert {(c["id"], c["outcome"]) for c in cadre["cases"]} == {(case_id, "sanctioned"), (child_id, "departed")}


def test_a_retried_departure_start_records_the_sanction_once(api, cadre, monkeypatch):
    """The audit's start fails after the sanction was applied (an incident); the retry opens the audit and
    does not apply the sanction again: one sanction row, one child."""
    real, calls = glue.OPERATIONS["start_departure_audit"], []

    def failing_once(effects, data, params):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("审计系统暂不可用")
        return real(effects, data, params)
    monkeypatch.setitem(glue.OPERATIONS, "start_departure_audit", failing_once)
    case_id = accountability_to_review(api, "grave", "severe")
    assert api.complete(case_id, "committee_review", decision="approve")["status"] == "incident"
    retried = api.post(f"/api/cases/{case_id}/retry", as_="admin", json={})
    assert retried.status_code == 200 and retried.json["status"] == "completed"
    assert len(retried.json["child_case_ids"]) == 1
    assert [(s["sanction"], s["case_id"]) for s in api.cadre()["sanctions"]] == [("removal", case_id)]


def test_second_sanction_keeps_the_later_ban(api, cadre):
    """Two sanctions on the same day: both recorded, the ban still today + 6 months."""
    services = api.client.application.extensions["cadreflow"]
    for final in ("public_apology", "suspension"):
        case_id = accountability_to_review(api, "minor", "none")
        api.complete(case_id, "committee_review", decision="adjust", final_sanction=final)
    cadre = api.cadre()
    assert [s["sanction"] for s in cadre["sanctions"]] == ["public_apology", "suspension"]
    assert cadre["promotion_ban_until"] == six_months_after(services.today()).isoformat()


def test_verification_and_investigation_escalate_to_discipline_head(fast_api, fast_services):
    """Overdue preliminary verification and investigation each open supervise_<task> for discipline_head."""
    api = fast_api
    api.create_cadre("c1")
    verifying = start_accountability(api)["id"]
    investigating = start_accountability(api)["id"]
    api.complete(investigating, "preliminary_verification", founded=True)
    assert fire_after_deadline(fast_services) == 2

    assert api.open_elements(verifying) == ["preliminary_verification", "supervise_preliminary_verification"]
    assert api.open_elements(investigating) == ["investigation", "supervise_investigation"]
    for case_id, element in ((verifying, "preliminary_verification"), (investigating, "investigation")):
        assert api.open_task(case_id, f"supervise_{element}")["role"] == "discipline_head"
        [mine] = api.inbox("discipline", case_id=case_id)
        assert (mine["element_id"], mine["overdue"]) == (element, True)
        head = api.inbox("discipline_head", case_id=case_id)
        assert [(t["element_id"], t["overdue"]) for t in head] == [(f"supervise_{element}", False)]
    overdue = api.get("/api/cases", query_string={"overdue": 1, "process": "accountability"}).json
    assert {c["id"] for c in overdue["items"]} == {verifying, investigating} and overdue["total"] == 2

    supervise = api.open_task(verifying, "supervise_preliminary_verification")
    assert api.complete_raw(supervise["id"], "discipline_head", {}).status_code == 422
    api.complete(verifying, "supervise_preliminary_verification", instruction="督促尽快核实")
    case = api.complete(verifying, "preliminary_verification", founded=False)
    assert case["outcome"] == "unfounded"
    urging = api.open_task(investigating, "supervise_investigation")["id"]
    case = api.complete(investigating, "investigation", facts="查实", circumstance="minor", loss="none")
    # The investigation done, its unfinished supervision ends with it (nobody is left to urge).
    assert [t["element_id"] for t in case["open_tasks"]] == ["committee_review"]
    assert api.inbox("discipline_head") == []
    assert api.get(f"/api/tasks/{urging}").json["status"] == "cancelled"
    case = api.complete(investigating, "committee_review", decision="approve")
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "sanctioned", [])


def test_a_history_names_no_linked_case_its_reader_may_not_read(api, cadre):
    """Audit finding: the case views left out links to cases the reader may not read, but the history still
    named them: the committee read the id of the departure audit its removal opened, the audit team the id of the
    accountability case behind it. Such an id is null and named in `redacted`; discipline reads both."""
    case_id = accountability_to_review(api, "minor", "none")
    api.complete(case_id, "committee_review", decision="adjust", final_sanction="removal")
    (child_id,) = api.case(case_id)["child_case_ids"]
    assert_error(api.get(f"/api/cases/{child_id}", as_="committee"), 404)
    assert_error(api.get(f"/api/cases/{case_id}", as_="audit"), 404)
    started = [e for e in api.get(f"/api/cases/{case_id}/history", as_="committee").json
               if e["action"] == "child_started"]
    assert [(e["detail"]["child_case_id"], e["detail"]["redacted"]) for e in started] == [(None, ["child_case_id"])]
    opened = api.get(f"/api/cases/{child_id}/history", as_="audit").json[0]
    assert opened["action"] == "start" and opened["detail"]["parent_case_id"] is None
    assert "parent_case_id" in opened["detail"]["redacted"]
    whole = api.get(f"/api/cases/{case_id}/history", as_="discipline").json
    assert [e["detail"]["child_case_id"] for e in whole if e["action"] == "child_started"] == [child_id]
    assert api.get(f"/api/cases/{child_id}/history", as_="discipline").json[0]["detail"]["parent_case_id"] == case_id
