"""Every shipped process's user tasks against the process contract (docs/processes.md §1–§8): each task's lane
(its role), the fields of its form with the choices each offers and the ones it requires, and the start form's.
test_deploy_validation.py holds the field names of §1–§4; this holds the roles, the choices and §5–§8 too, so a
renamed option or a task moved to another lane fails here before any case meets it."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from tests.contract import LADDER
from tests.engine.helpers import BPMN_DIR, compile_file

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
CATEGORIES = {"decision_failure", "supervision_failure", "abuse_of_power", "inaction", "selection_violation", "other"}
SUPERVISE = {"instruction": None}

# key -> start fields {field: choices or None}, required start fields, tasks {task: (role, fields, required)}
CONTRACT: dict[str, dict[str, Any]] = {
    "pre_appointment_vetting": {
        "start": {"cadre_id": None, "proposed_post": None,
                  "selection_method": {"democratic_recommendation", "competitive", "organisation"}},
        "start_required": {"cadre_id", "proposed_post"},
        "tasks": {
            **{task: ("org_dept", {"opinion": {"positive", "neutral", "negative"}, "notes": None}, {"opinion"})
               for task in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion")},
            "democratic_evaluation": ("org_dept", dict.fromkeys(("votes_approve", "votes_basic", "votes_disapprove")),
                                      {"votes_approve", "votes_basic", "votes_disapprove"}),
            "org_head_review": ("org_head", {"decision": {"approve", "return", "reject"}, "comment": None}, set()),
            "verify_objection": ("discipline", {"substantiated": None, "notes": None}, {"substantiated"}),
            "committee_decision": ("committee", {"decision": {"appoint", "not_appoint"}}, set()),
        },
    },
    "admonishment": {
        "start": {"cadre_id": None, "summary": None,
                  "trigger": {"assessment_basic", "report_violation", "complaint", "inspection",
                              "public_evaluation", "early_warning"}},
        "start_required": {"cadre_id", "trigger", "summary"},
        "tasks": {
            "intake_review": ("discipline", {"form": {"talk", "written", "inquiry", "dismiss"}, "reason": None},
                              {"reason"}),
            "conduct_talk": ("discipline", {"talk_date": None, "minutes": None}, {"minutes"}),
            "issue_written_admonishment": ("discipline", {"letter_ref": None}, {"letter_ref"}),
            "record_inquiry_reply": ("discipline", {"reply": None}, {"reply"}),
            "rectification_plan": ("discipline", {"plan": None}, {"plan"}),
            "follow_up_review": ("discipline", {"rectified": {"yes", "partial", "no"}}, set()),
            "supervise_follow_up_review": ("discipline_head", SUPERVISE, {"instruction"}),
            "escalation_review": ("discipline_head", {"escalate": None, "reason": None}, set()),
        },
    },
    "departure_audit": {
        "start": {"cadre_id": None, "planned_departure_on": None,
                  "departure_reason": {"rotation", "promotion", "transfer", "retirement", "resignation",
                                       "accountability", "reassignment"}},
        "start_required": {"cadre_id", "departure_reason"},
        "tasks": {
            "assign_audit_team": ("audit_head", {"team_lead": None, "members": None}, {"team_lead"}),
            "audit_fieldwork": ("audit", {"findings": {"none", "minor", "major"}, "amount_involved": None,
                                          "report_ref": None}, {"report_ref"}),
            "supervise_audit_fieldwork": ("audit_head", SUPERVISE, {"instruction"}),
            "rectify_findings": ("audit", {"rectified": None}, set()),
            "approve_departure": ("org_dept", {"decision": {"approve", "hold"}, "comment": None}, set()),
        },
    },
    "accountability": {
        "start": {"cadre_id": None, "allegation": None, "category": CATEGORIES,
                  "source": {"hotline", "web", "qq", "tv", "inspection", "audit_referral", "admonishment_escalation"}},
        "start_required": {"cadre_id", "allegation"},
        "tasks": {
            "preliminary_verification": ("discipline", {"founded": None, "notes": None}, set()),
            "supervise_preliminary_verification": ("discipline_head", SUPERVISE, {"instruction"}),
            "investigation": ("discipline", {"facts": None, "circumstance": {"minor", "serious", "grave"},
                                             "loss": {"none", "major", "severe"}}, {"facts"}),
            "supervise_investigation": ("discipline_head", SUPERVISE, {"instruction"}),
            "committee_review": ("committee", {"decision": {"approve", "adjust", "reject"},
                                               "final_sanction": set(LADDER)}, set()),
        },
    },
    "annual_assessment": {
        "start": {"cadre_id": None, "year": None},
        "start_required": {"cadre_id", "year"},
        "tasks": {
            "democratic_assessment": ("org_dept", {**dict.fromkeys(("votes_excellent", "votes_competent",
                                                                    "votes_basic", "votes_incompetent")),
                                                   "performance_summary": None},
                                      {"votes_excellent", "votes_competent", "votes_basic", "votes_incompetent",
                                       "performance_summary"}),
            "grade_review": ("org_head", {"grade": {"excellent", "competent", "basic"}, "comment": None}, set()),
            "organisational_handling": ("org_head", {"measure": {"deputy_post", "non_leading_post", "training",
                                                                 "technical_post", "removal"}, "comment": None},
                                        set()),
        },
    },
    "rotation_review": {
        "start": {"cadre_id": None, "rule": {"mandatory", "advised"}, "years_in_post": None},
        "start_required": {"cadre_id"},
        "tasks": {
            "rotation_plan": ("org_dept", {"decision": {"rotate", "exchange", "keep"}, "reason": None}, {"reason"}),
        },
    },
    "public_report": {
        "start": {"channel": {"web", "hotline", "qq", "tv"}, "subject_name": None, "subject_unit": None,
                  "category": CATEGORIES, "content": None, "contact": None},
        "start_required": {"channel", "content"},
        "tasks": {
            "triage_report": ("discipline", {"decision": {"accountability", "admonishment", "transfer",
                                                          "not_accepted"},
                                             "transfer_to": None, "reason": None, "cadre_id": None}, {"decision"}),
            "supervise_triage_report": ("discipline_head", SUPERVISE, {"instruction"}),
            "reply_to_reporter": ("discipline", {"reply": None}, {"reply"}),
            "supervise_reply_to_reporter": ("discipline_head", SUPERVISE, {"instruction"}),
        },
    },
    "integrity_report": {
        "start": {"cadre_id": None, "year": None},
        "start_required": {"cadre_id", "year"},
        "tasks": {
            "submit_report": ("org_dept", {"duty_report": None, "integrity_report": None},
                              {"duty_report", "integrity_report"}),
            "committee_hearing": ("committee", {"opinion": None}, {"opinion"}),
            "evaluation_summary": ("org_head", {"conclusion": None}, {"conclusion"}),
        },
    },
}


def lanes(key: str) -> dict[str, str]:
    """Each flow node's lane name (its role) in the shipped diagram."""
    root = etree.parse(str(BPMN_DIR / f"{key}.bpmn")).getroot()
    return {ref.text: lane.get("name") for lane in root.iter(f"{BPMN}lane") for ref in lane.iter(f"{BPMN}flowNodeRef")}


def choices(prop: dict[str, Any]) -> set[str] | None:
    found = prop.get("enum", (prop.get("items") or {}).get("enum"))
    return set(found) if found is not None else None


def check_form(where: str, form: dict[str, Any], fields: dict[str, set[str] | None], required: set[str]) -> None:
    props = form["properties"]
    assert set(fields) <= set(props), (where, set(fields) - set(props))
    for name, wanted in fields.items():
        assert choices(props[name]) == wanted, (where, name, choices(props[name]))
    assert required <= set(form.get("required", ())), (where, required - set(form.get("required", ())))


@pytest.mark.parametrize("key", sorted(CONTRACT))
def test_each_task_sits_in_its_role_with_the_contract_fields_and_choices(key):
    definition, contract, lane_of = compile_file(BPMN_DIR / f"{key}.bpmn"), CONTRACT[key], lanes(key)
    assert set(definition.forms) == set(contract["tasks"])
    check_form(f"{key} start", definition.start_form, contract["start"], contract["start_required"])
    for task, (role, fields, required) in contract["tasks"].items():
        assert lane_of.get(task) == role, (key, task, lane_of.get(task))
        check_form(f"{key}.{task}", definition.forms[task], fields, required)
