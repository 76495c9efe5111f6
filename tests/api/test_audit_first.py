"""先审计，后离任 on every path (docs/processes.md, amendments): a sitting leading cadre's post changes only
after a departure audit of it has cleared; every process outcome that changes a post goes through the
one rule in `service/usecases/cadres.py`."""

from __future__ import annotations

from datetime import date

import pytest

from service.errors import Conflict
from service.usecases import cadres
from tests.api.support import DEPARTURE, accountability_to_review, vetting_to_notice
from tests.api.test_cycle_assessment import incompetent_case

ROTATION = "rotation_review"
POST = "副局长"  # what create_cadre gives


def appoint_at_committee(api, cadre_id="c1", post="县发改局局长"):
    """A vetting case through its notice (an unfounded objection) to committee_decision appoint."""
    case_id = vetting_to_notice(api, cadre_id, post)
    api.post("/api/messages", as_="discipline", json={"name": "vetting_objection", "case_id": case_id,
                                                      "data": {"report": "反映"}})
    api.complete(case_id, "verify_objection", substantiated=False)
    return api.complete(case_id, "committee_decision", decision="appoint")


def the_audit(api, parent_id):
    """The one departure audit linked to a case (as a child)."""
    children = [api.case(c) for c in api.case(parent_id)["child_case_ids"]]
    audits = [c for c in children if c["process"] == DEPARTURE]
    assert len(audits) == 1, children
    return audits[0]


def run_audit(api, audit_id, decision="approve"):
    """Assign, audit (no findings), decide: the audit case afterwards."""
    api.complete(audit_id, "assign_audit_team", team_lead="audit2")
    task = api.open_task(audit_id, "audit_fieldwork")
    response = api.complete_raw(task["id"], "audit2", {"findings": "none", "report_ref": "审报〔2026〕1号"})
    assert response.status_code == 200, response.json
    return api.complete(audit_id, "approve_departure", decision=decision)


# Vetting: appoint replacing a sitting leading cadre's post.

def test_vetting_appoint_of_a_sitting_leading_cadre_waits_for_the_audit(api, cadre):
    """appoint → a linked departure_audit (promotion), the vetting waits at await_departure_audit with no task,
    the post is unchanged; the audit departs → the new post applies, outcome appointed."""
    case = appoint_at_committee(api)
    assert (case["status"], case["outcome"], case["open_tasks"]) == ("open", None, [])
    audit = the_audit(api, case["id"])
    assert (audit["data"]["departure_reason"], audit["parent_case_id"]) == ("promotion", case["id"])
    assert api.cadre()["post"] == POST
    assert "await_departure_audit" in api.get(f"/api/cases/{case['id']}/diagram").json["active"]

    done = run_audit(api, audit["id"], "approve")
    assert (done["status"], done["outcome"]) == ("completed", "departed")
    vetting = api.case(case["id"])
    assert (vetting["status"], vetting["outcome"]) == ("completed", "appointed")
    assert vetting["data"]["await_departure_audit_outcome"] == "departed"
    today = api.client.application.extensions["cadreflow"].today()
    cadre = api.cadre()
    assert cadre["post"] == "县发改局局长" and cadre["post_started_on"] == today.isoformat()


def test_the_audit_of_the_post_left_does_not_clear_the_post_taken_the_same_day(api, cadre):
    """The audit of the old post clears on the day the new post begins: the new post is not audited by it, so
    the cadre's next appointment waits for an audit of its own (else every cadre appointed through the
    audit-first path would leave its new post, at any later time, without one)."""
    first = appoint_at_committee(api)
    run_audit(api, the_audit(api, first["id"])["id"], "approve")
    assert api.cadre()["post"] == "县发改局局长"
    second = appoint_at_committee(api, post="县委常委")
    assert (second["status"], second["outcome"]) == ("open", None)
    assert the_audit(api, second["id"])["data"]["departure_reason"] == "promotion"
    assert api.cadre()["post"] == "县发改局局长"


def test_vetting_held_audit_ends_held_and_keeps_the_post(api, cadre):
    """The audit ends held → the vetting ends held; the cadre keeps the old post."""
    case = appoint_at_committee(api)
    run_audit(api, the_audit(api, case["id"])["id"], "hold")
    vetting = api.case(case["id"])
    assert (vetting["status"], vetting["outcome"]) == ("completed", "held")
    assert api.cadre()["post"] == POST


def test_vetting_after_a_cleared_audit_appoints_at_once(api, cadre):
    """A departure audit already cleared since post_started_on: appoint applies at once, no second audit."""
    first = api.start(DEPARTURE, "c1", as_="org_dept", departure_reason="transfer", planned_departure_on="2030-01-01")
    run_audit(api, first["id"], "hold")  # cleared, but the cadre stayed
    case = appoint_at_committee(api)
    assert (case["status"], case["outcome"]) == ("completed", "appointed")
    assert api.case(case["id"])["child_case_ids"] == []
    assert api.cadre()["post"] == "县发改局局长"


@pytest.mark.parametrize("level", ["middle", "staff"])
def test_vetting_appoints_other_levels_at_once(api, level):
    """Only leading cadres owe the audit: a middle or staff cadre is appointed at once."""
    api.create_cadre("c1", post_level=level)
    case = appoint_at_committee(api)
    assert (case["status"], case["outcome"]) == ("completed", "appointed")


# Annual assessment measures.

@pytest.mark.parametrize(("measure", "new_post", "after"), [
    ("removal", None, ""), ("non_leading_post", "四级调研员", "四级调研员"), ("deputy_post", None, ""),
    ("technical_post", "高级经济师", "高级经济师"),
])
def test_assessment_measure_waits_for_the_audit(api, cadre, measure, new_post, after):
    """A measure taking a sitting leading cadre out of the post → a linked departure_audit (reassignment);
    the post changes only once it departs; the measure is recorded at once; outcome incompetent."""
    case_id = incompetent_case(api)
    form = {"measure": measure, **({"new_post": new_post} if new_post else {})}
    case = api.complete(case_id, "organisational_handling", **form)
    assert (case["status"], case["open_tasks"]) == ("open", [])
    assert api.cadre()["post"] == POST
    assert api.cadre()["assessments"][0]["measure"] == measure
    audit = the_audit(api, case_id)
    assert audit["data"]["departure_reason"] == "reassignment"
    run_audit(api, audit["id"], "approve")
    assert (api.case(case_id)["status"], api.case(case_id)["outcome"]) == ("completed", "incompetent")
    assert api.cadre()["post"] == after


def test_assessment_measure_held_keeps_the_post(api, cadre):
    """The audit is held → the assessment still ends incompetent, the post is unchanged."""
    case_id = incompetent_case(api)
    api.complete(case_id, "organisational_handling", measure="removal")
    run_audit(api, the_audit(api, case_id)["id"], "hold")
    case = api.case(case_id)
    assert (case["status"], case["outcome"], case["data"]["await_departure_audit_outcome"]) == (
        "completed", "incompetent", "held")
    assert api.cadre()["post"] == POST


def test_training_changes_no_post_and_opens_no_audit(api, cadre):
    """离职培训 is not a post change: no audit, the post stays."""
    case_id = incompetent_case(api)
    case = api.complete(case_id, "organisational_handling", measure="training")
    assert (case["status"], case["outcome"]) == ("completed", "incompetent")
    assert api.case(case_id)["child_case_ids"] == [] and api.cadre()["post"] == POST


def test_middle_cadre_measure_applies_at_once(api):
    """A middle-level cadre owes no audit: non_leading_post applies at once with the new post."""
    api.create_cadre("c1", post_level="middle")
    case_id = incompetent_case(api)
    case = api.complete(case_id, "organisational_handling", measure="non_leading_post", new_post="四级主任科员")
    assert (case["status"], case["outcome"]) == ("completed", "incompetent")
    assert api.cadre()["post"] == "四级主任科员"


# Every path: whatever takes a sitting leading cadre out of a post goes through a departure audit first.

def _vetting(api):
    return appoint_at_committee(api)["id"], "promotion"


def _assessment(api):
    case_id = incompetent_case(api)
    api.complete(case_id, "organisational_handling", measure="removal")
    return case_id, "reassignment"


def _rotation(api):
    case = api.start(ROTATION, "c1", as_="org_dept", rule="mandatory", years_in_post=11, post_level="leading")
    api.complete(case["id"], "rotation_plan", decision="rotate", reason="任职满十年")
    return case["id"], "rotation"


def _accountability(api):
    case_id = accountability_to_review(api, "grave", "severe")
    api.complete(case_id, "committee_review", decision="approve")
    return case_id, "accountability"


@pytest.mark.parametrize("path", [_vetting, _assessment, _rotation, _accountability],
                         ids=["vetting", "assessment", "rotation", "accountability"])
def test_every_path_audits_first(api, cadre, path):
    """Each process that takes the cadre out of the post opens a linked departure audit with its reason and
    leaves the post alone until that audit has cleared and departs."""
    case_id, reason = path(api)
    audit = the_audit(api, case_id)
    assert audit["data"]["departure_reason"] == reason
    assert api.cadre()["post"] == POST
    api.complete(audit["id"], "assign_audit_team", team_lead="audit2")
    assert api.cadre()["post"] == POST and api.cadre()["cleared_audits"] == []
    task = api.open_task(audit["id"], "audit_fieldwork")
    api.complete_raw(task["id"], "audit2", {"findings": "none", "report_ref": "R"})
    api.complete(audit["id"], "approve_departure", decision="approve")
    assert api.cadre()["post"] != POST


def test_the_one_rule_refuses_a_post_change_without_the_audit(api, cadre):
    """cadres.change_post, which every outcome uses, refuses to move a sitting leading cadre (409) until an
    audit of the current post has cleared; a direct edit of the post is 409 too."""
    services = api.client.application.extensions["cadreflow"]
    with services.db.unit_of_work() as session:
        with pytest.raises(Conflict):
            cadres.change_post(session, "c1", "别的职务", date.today())
        assert cadres.post_change_needs_audit(session, session.get(cadres.Cadre, "c1"))
    assert api.patch("/api/cadres/c1", as_="org_dept", json={"post": "别的职务"}).status_code == 409
    assert api.cadre()["post"] == POST



SHORTCUT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs_shortcut" targetNamespace="http://x">
  <bpmn:process id="shortcut_appointment" name="直接任职" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_org_dept" name="org_dept">
      <bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start" name="开始"><bpmn:extensionElements><spiffworkflow:formSchema>{"type": "object",
      "title": "发起", "properties": {"cadre_id": {"type": "string", "title": "干部"},
      "proposed_post": {"type": "string", "title": "拟任职务"}}, "required": ["cadre_id", "proposed_post"],
      "additionalProperties": false}</spiffworkflow:formSchema></bpmn:extensionElements></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核"><bpmn:extensionElements><spiffworkflow:formSchema>{"type": "object",
      "title": "审核", "properties": {"ok": {"type": "boolean", "title": "同意"}}, "required": ["ok"],
      "additionalProperties": false}</spiffworkflow:formSchema></bpmn:extensionElements></bpmn:userTask>
    <bpmn:serviceTask id="apply" name="任职"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="appoint" resultVariable="result"><spiffworkflow:parameters/>
      </spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="end_done" name="完成"><bpmn:terminateEventDefinition id="t"/></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="apply"/>
    <bpmn:sequenceFlow id="f3" sourceRef="apply" targetRef="end_done"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_diagram_that_skips_the_audit_cannot_change_the_post(api, cadre):
    """A designer's process calling `appoint` straight away for a sitting leading cadre: the step is refused
    (the case stops at an incident naming the rule), the post is unchanged; a middle cadre is appointed."""
    deployed = api.post("/api/processes/shortcut_appointment/versions", as_="designer", data=SHORTCUT,
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    case = api.start("shortcut_appointment", "c1", proposed_post="局长")
    task = api.open_task(case["id"], "review")
    response = api.complete_raw(task["id"], "org_dept", {"ok": True})
    assert response.status_code == 200, response.json
    stopped = api.case(case["id"])
    assert (stopped["status"], stopped["incident"]["element_id"]) == ("incident", "apply"), stopped["incident"]
    assert "先审计，后离任" in stopped["incident"]["message"]
    assert api.cadre()["post"] == POST
    api.create_cadre("c2", post_level="middle")
    other = api.start("shortcut_appointment", "c2", proposed_post="局长")
    done = api.complete(other["id"], "review", ok=True)
    assert (done["status"], api.cadre("c2")["post"]) == ("completed", "局长")
