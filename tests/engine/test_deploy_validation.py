"""Deployment checks: hostile XML, syntax and schema errors, lanes and forms, missing DMN, the contract."""

from __future__ import annotations

import time

import pytest

from tests.engine.bpmn_builder import KEY, chain_process, form_schema, line_of, named_chain, script_process
from tests.engine.helpers import BPMN_DIR, PROCESS_KEYS, ROLES, compile_file, dmn_files
from workflows.engine import DeploymentError, Problem, compile_process, decision_ids, referenced_decisions
from workflows.engine.bounds import DeployLimits

VETTING = BPMN_DIR / "pre_appointment_vetting.bpmn"


def refused(key: str, bpmn: bytes, dmns: dict[str, bytes] | None = None) -> list[Problem]:
    with pytest.raises(DeploymentError) as caught:
        compile_process(key, bpmn, dmns or {}, ROLES)
    problems = caught.value.problems
    assert problems and all(isinstance(p, Problem) for p in problems)
    assert all(p.line is None or isinstance(p.line, int) for p in problems), problems
    return problems


def with_doctype(doctype: str, body: str = "") -> bytes:
    """The minimal script process with a DOCTYPE inserted after the XML declaration."""
    text = script_process("x = 1").decode()
    declaration, rest = text.split("\n", 1)
    rest = rest.replace('<bpmn:startEvent id="start" name="开始"/>',
                        f'<bpmn:startEvent id="start" name="开始"><bpmn:documentation>{body}'
                        "</bpmn:documentation></bpmn:startEvent>")
    return f"{declaration}\n{doctype}\n{rest}".encode()


# Hostile XML -----------------------------------------------------------------------------------


def test_xxe_refused_without_file_content():
    """An external entity (XXE) is refused before parsing; no file content leaks into the problems."""
    bpmn = with_doctype('<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")
    problems = refused(KEY, bpmn)
    text = " ".join(p.message for p in problems)
    assert "root:" not in text and "/bin/" not in text
    assert "DOCTYPE" in text
    assert problems[0].line == 2


def test_billion_laughs_refused_quickly():
    """An entity-expansion bomb is refused at once, without expanding anything."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    bpmn = with_doctype(f"<!DOCTYPE definitions [{entities}]>", "&lol9;")
    began = time.monotonic()
    problems = refused(KEY, bpmn)
    assert time.monotonic() - began < 5  # expanded, the bomb is a billion copies: minutes, not seconds
    assert all(len(p.message) < 500 for p in problems)
    assert "lollollol" not in " ".join(p.message for p in problems)


@pytest.mark.parametrize("doctype", [
    "<!DOCTYPE definitions>",
    '<!doctype definitions SYSTEM "http://example.invalid/x.dtd">',
    '<!DOCTYPE definitions [<!ENTITY name "value">]>',
])
def test_any_doctype_refused(doctype):
    """Any DOCTYPE, in any case, is refused."""
    refused(KEY, with_doctype(doctype))


def test_doctype_in_dmn_refused():
    """A DMN file with an external entity is refused too, without its content in the message."""
    dmn = dmn_files()["vetting_eligibility.dmn"].replace(
        b"?>", b'?>\n<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 1)
    problems = refused("pre_appointment_vetting", VETTING.read_bytes(), {"vetting_eligibility.dmn": dmn})
    assert "root:" not in " ".join(p.message for p in problems)


# Malformed and invalid XML ---------------------------------------------------------------------


def test_malformed_xml_reports_line():
    """Malformed XML gives a Problem with the line of the error."""
    bpmn = script_process("x = 1").replace(b"</bpmn:scriptTask>", b"</bpmn:scriptTsk>")
    problems = refused(KEY, bpmn)
    assert problems[0].line == line_of(bpmn, "</bpmn:scriptTsk>")


@pytest.mark.parametrize("content", [b"", b"not xml at all", b"<?xml version='1.0'?>\n<root>"])
def test_garbage_refused(content):
    """Empty or non-XML uploads give a DeploymentError, not a parser exception."""
    refused(KEY, content)


def test_xsd_invalid_element_reported():
    """An element the BPMN schema does not allow is reported (XSD) with its line."""
    bpmn = script_process("x = 1").replace(b'<bpmn:scriptTask id="run_script"',
                                           b'<bpmn:notAnElement id="odd"/>\n    <bpmn:scriptTask id="run_script"')
    problems = refused(KEY, bpmn)
    assert any("XSD" in p.message or "notAnElement" in p.message for p in problems), problems
    assert line_of(bpmn, "notAnElement") in {p.line for p in problems}


def test_thousands_of_xsd_errors_are_reported_quickly_the_first_ones_named(monkeypatch: pytest.MonkeyPatch):
    """Each XSD error was put on its element by walking the whole document: a 2 MB upload of some 50,000 errors held
    the web process for minutes at deploy, and answered with all of them. Now only the first ones are placed, each
    by one lookup in a table of lines read once (counted here, not timed: the machines are shared)."""
    from tests.engine.bpmn_builder import document
    from workflows.engine import compiler

    placed = []
    element_at = compiler._element_at
    monkeypatch.setattr(compiler, "_element_at", lambda lines, line: placed.append(line) or element_at(lines, line))
    body = "".join(f'    <bpmn:dataObject id="d{i}" b="1"/>\n' for i in range(12_000))
    bpmn = document('    <bpmn:startEvent id="start"/>\n' + body, {})
    problems = refused(KEY, bpmn)
    assert len(placed) == compiler.MAX_XSD_PROBLEMS
    assert len(problems) <= 51
    assert problems[0].element_id == "d0" and problems[0].line == line_of(bpmn, 'id="d0"')
    assert "11950" in problems[-1].message and "XSD" in problems[-1].message


def test_not_bpmn_refused():
    """Well-formed XML that is not BPMN is refused with a DeploymentError."""
    refused(KEY, b"<?xml version='1.0'?>\n<html><body>hello</body></html>")


def test_wrong_process_key_reported():
    """Deploying a file under a key it does not define names both the key and what was found."""
    problems = refused("vetting", VETTING.read_bytes(), dmn_files())
    text = " ".join(p.message for p in problems)
    assert "vetting" in text and "pre_appointment_vetting" in text


def declared(encoding: str) -> bytes:
    """A UTF-8 file (one user task named 审核) whose XML declaration names `encoding`."""
    text = named_chain(name="审核").decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return text.replace('encoding="UTF-8"', f'encoding="{encoding}"', 1).encode()


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "ISO_8859-1:1987", "windows-1252", "GB18030"])
def test_a_declaration_naming_another_encoding_than_utf8_is_refused(encoding):
    """The parser follows the declaration, the browser's modeler reads the text as UTF-8: with ISO-8859-1 the task
    the designer reviewed as 审核 ran as 'å®¡æ\xa0¸', and a condition comparing with 同意 never held."""
    with pytest.raises(DeploymentError) as caught:
        compile_process(KEY, declared(encoding), {}, ROLES, limits=DeployLimits())
    assert any("UTF-8" in p.message and encoding in p.message for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("encoding", ["UTF-8", "utf-8", "utf8"])
def test_a_utf8_declaration_deploys(encoding):
    deployed = compile_process(KEY, declared(encoding), {}, ROLES, limits=DeployLimits())
    assert "审核" in deployed.task_names.values()


def test_a_version_stored_before_the_encoding_was_checked_still_loads():
    """A stored version is parsed again without deploy's checks: its cases must go on as they ran."""
    assert compile_process(KEY, declared("ISO-8859-1"), {}, None).task_names


# Lanes and forms -------------------------------------------------------------------------------


GOOD = form_schema()
BAD_TASKS = {
    "no_lane": GOOD,
    "unknown_lane": GOOD,
    "no_form": "",
    "broken_json": form_schema('{"type": "object", '),
    "invalid_schema": form_schema({"type": "object", "properties": {"a": {"type": "nonsense"}}}),
    "not_object": form_schema({"type": "string"}),
}


def test_valid_chain_compiles():
    """The helper's process with correct tasks compiles (so the failures below are the defects)."""
    definition = compile_process(KEY, chain_process([("fine", GOOD)], {"org_dept": ["fine"]}), {}, ROLES)
    assert set(definition.forms) == {"fine"}


# The unknown role is reported on its lane (the lane names the role), the other defects on their task.
REPORTED_ON = {**{element_id: element_id for element_id in BAD_TASKS}, "unknown_lane": "lane_nonsense_role"}


def lanes_for(*element_ids: str) -> dict[str, list[str]]:
    """The lanes of a chain holding these tasks: `unknown_lane` in a lane of an unknown role, `no_lane` in none."""
    lanes = {"org_dept": ["fine", *(e for e in element_ids if e not in {"no_lane", "unknown_lane"})]}
    return lanes | ({"nonsense_role": ["unknown_lane"]} if "unknown_lane" in element_ids else {})


@pytest.mark.parametrize("element_id", sorted(BAD_TASKS))
def test_user_task_defect_reported_with_element_id(element_id):
    """Each user-task defect (no lane, unknown lane, no form, broken/invalid/non-object schema) names its task,
    or for an unknown role the lane naming it."""
    bpmn = chain_process([("fine", GOOD), (element_id, BAD_TASKS[element_id])], lanes_for(element_id))
    problems = refused(KEY, bpmn)
    assert {p.element_id for p in problems} == {REPORTED_ON[element_id]}, problems
    if element_id == "unknown_lane":
        assert [p.line for p in problems] == [line_of(bpmn, '<bpmn:lane id="lane_nonsense_role"')]
        return
    task_line = line_of(bpmn, f'<bpmn:userTask id="{element_id}"')
    assert {p.line for p in problems} <= {task_line, task_line + 1}  # the task or its form schema


def test_a_lane_naming_an_unknown_role_is_refused_even_without_tasks():
    """Every lane names a role: an empty lane of an unknown role is refused too, listing the known roles."""
    bpmn = chain_process([("fine", GOOD)], {"org_dept": ["fine"], "inspection_team": []})
    problems = refused(KEY, bpmn)
    assert [p.element_id for p in problems] == ["lane_inspection_team"]
    assert "inspection_team" in problems[0].message_en and "org_dept, org_head" in problems[0].message_en


def test_roles_are_checked_only_when_given():
    """An accepted version is parsed again without the roles (they are the service's data, checked at deploy)."""
    bpmn = chain_process([("fine", GOOD)], {"inspection_team": ["fine"]})
    refused(KEY, bpmn)
    assert compile_process(KEY, bpmn, {}, None).forms.keys() == {"fine"}
    assert compile_process(KEY, bpmn, {}, ["inspection_team"]).forms.keys() == {"fine"}


def test_all_problems_reported_at_once():
    """Several defects in one file are all reported in one DeploymentError."""
    bpmn = chain_process([("fine", GOOD), *BAD_TASKS.items()], lanes_for(*BAD_TASKS))
    problems = refused(KEY, bpmn)
    assert {p.element_id for p in problems} == set(REPORTED_ON.values())
    assert all(p.severity == "error" for p in problems)


def test_form_and_script_problems_reported_together():
    """A form defect and a script defect in the same file are reported together."""
    bpmn = script_process("exec('1')").replace(form_schema().encode(), form_schema('{"type": ').encode())
    problems = refused(KEY, bpmn)
    assert {"run_script", "review"} <= {p.element_id for p in problems}


def test_invalid_start_form_reported():
    """A broken start-event form schema is reported with the start event's id."""
    bpmn = chain_process([("fine", GOOD)], {"org_dept": ["fine"]}).replace(
        b'<bpmn:startEvent id="start"/>',
        b'<bpmn:startEvent id="start"><bpmn:extensionElements>'
        + form_schema('{"type": "object", "required": 5}').encode()
        + b"</bpmn:extensionElements></bpmn:startEvent>")
    problems = refused(KEY, bpmn)
    assert [p.element_id for p in problems] == ["start"]


def test_missing_outcome_end_is_a_warning():
    """A process with no end_<outcome> event deploys, with a warning."""
    bpmn = chain_process([("fine", GOOD)], {"org_dept": ["fine"]}).replace(b"end_done", b"finished")
    definition = compile_process(KEY, bpmn, {}, ROLES)
    assert definition.warnings
    assert all(w.severity == "warning" for w in definition.warnings)


# What a case stores of its diagram fits the columns it is stored in ---------------------------------


@pytest.mark.parametrize(("bpmn", "element", "words"), [
    (named_chain(element_id="review_" + "x" * 94), "review_" + "x" * 93, "an id of 101 characters"),
    (named_chain(name="长" * 201), "review", "userTask name of 201 characters"),
    (named_chain(process_name="长" * 201), KEY, "process name of 201 characters"),
    (named_chain(end_id="end_" + "y" * 41), "end_" + "y" * 41, "has 41 characters; the limit is 40"),
], ids=["element-id", "task-name", "process-name", "outcome"])
def test_what_a_case_stores_must_fit_its_column(bpmn, element, words):
    """PostgreSQL refuses a longer value at the first step that stores it (SQLite never checks): a task's
    element id (100), a name (200), an outcome (40) are refused at deploy, naming the element (only at
    deploy: a version deployed before the check still loads)."""
    with pytest.raises(DeploymentError) as caught:
        compile_process(KEY, bpmn, {}, ROLES, limits=DeployLimits())
    problems = caught.value.problems
    assert [(p.element_id, words in p.message) for p in problems] == [(element, True)], problems


def test_names_and_ids_at_their_limits_deploy():
    limits = named_chain(element_id="r" * 100, name="长" * 200, process_name="长" * 200, end_id="end_" + "y" * 40)
    assert compile_process(KEY, limits, {}, ROLES, limits=DeployLimits()).key == KEY


# DMN -------------------------------------------------------------------------------------------


def test_missing_decision_is_a_deployment_error():
    """A process calling a DMN decision that is not supplied gives a DeploymentError naming the rule task."""
    problems = refused("pre_appointment_vetting", VETTING.read_bytes(), {})
    assert "check_eligibility" in {p.element_id for p in problems}
    assert any("vetting_eligibility" in p.message for p in problems)


def test_wrong_decision_supplied_is_a_deployment_error():
    """Supplying only an unrelated DMN file still gives a DeploymentError."""
    dmns = {"sanction_ladder.dmn": dmn_files()["sanction_ladder.dmn"]}
    refused("pre_appointment_vetting", VETTING.read_bytes(), dmns)


def test_referenced_decisions_match_dmn_files():
    """Each shipped BPMN calls only decisions that a shipped DMN file defines."""
    defined = set().union(*(decision_ids(content) for content in dmn_files().values()))
    wanted = {key: referenced_decisions((BPMN_DIR / f"{key}.bpmn").read_bytes()) for key in PROCESS_KEYS}
    assert wanted["pre_appointment_vetting"] == {"vetting_eligibility"}
    assert wanted["accountability"] == {"sanction_ladder"}
    assert set().union(*wanted.values()) <= defined


# The shipped processes against the contract (docs/processes.md §1–4) --------------------------------

CONTRACT = {
    "pre_appointment_vetting": {
        "start": {"cadre_id", "proposed_post", "selection_method"},
        "tasks": {
            "solicit_family_opinion": ("org_dept", {"opinion", "notes"}),
            "solicit_colleague_opinion": ("org_dept", {"opinion", "notes"}),
            "solicit_public_opinion": ("org_dept", {"opinion", "notes"}),
            "democratic_evaluation": ("org_dept", {"votes_approve", "votes_basic", "votes_disapprove"}),
            "org_head_review": ("org_head", {"decision", "comment"}),
            "verify_objection": ("discipline", {"substantiated", "notes"}),
            "committee_decision": ("committee", {"decision"}),
        },
    },
    "admonishment": {
        "start": {"cadre_id", "trigger", "summary"},
        "tasks": {
            "intake_review": ("discipline", {"form", "reason"}),
            "conduct_talk": ("discipline", {"talk_date", "minutes"}),
            "issue_written_admonishment": ("discipline", {"letter_ref"}),
            "record_inquiry_reply": ("discipline", {"reply"}),
            "rectification_plan": ("discipline", {"plan"}),
            "follow_up_review": ("discipline", {"rectified"}),
            "supervise_follow_up_review": ("discipline_head", {"instruction"}),
            "escalation_review": ("discipline_head", {"escalate", "reason"}),
        },
    },
    "departure_audit": {
        "start": {"cadre_id", "departure_reason", "planned_departure_on"},
        "tasks": {
            "assign_audit_team": ("audit_head", {"team_lead", "members"}),
            "audit_fieldwork": ("audit", {"findings", "amount_involved", "report_ref"}),
            "supervise_audit_fieldwork": ("audit_head", {"instruction"}),
            "rectify_findings": ("audit", {"rectified"}),
            "approve_departure": ("org_dept", {"decision", "comment"}),
        },
    },
    "accountability": {
        "start": {"cadre_id", "source", "category", "allegation"},
        "tasks": {
            "preliminary_verification": ("discipline", {"founded", "notes"}),
            "supervise_preliminary_verification": ("discipline_head", {"instruction"}),
            "investigation": ("discipline", {"facts", "circumstance", "loss"}),
            "supervise_investigation": ("discipline_head", {"instruction"}),
            "committee_review": ("committee", {"decision", "final_sanction"}),
        },
    },
}


@pytest.mark.parametrize("key", PROCESS_KEYS)
def test_shipped_process_deploys_cleanly(key):
    """Each shipped process compiles with its DMN files, without warnings, under its key and Chinese name."""
    definition = compile_file(BPMN_DIR / f"{key}.bpmn")
    assert definition.key == key
    assert definition.warnings == ()
    assert definition.name and definition.name != key


@pytest.mark.parametrize("key", PROCESS_KEYS)
def test_shipped_process_has_contract_tasks_and_fields(key):
    """The user tasks are exactly the contract's ids, their forms hold the contract's fields, and the start form too."""
    definition = compile_file(BPMN_DIR / f"{key}.bpmn")
    contract = CONTRACT[key]
    assert set(definition.forms) == set(contract["tasks"])
    assert set(definition.task_names) == set(contract["tasks"])
    assert set(definition.start_form["properties"]) == contract["start"]
    for element_id, (_role, fields) in contract["tasks"].items():
        form = definition.forms[element_id]
        assert fields <= set(form["properties"]), element_id
        assert form.get("additionalProperties") is False, element_id
        assert definition.task_names[element_id] != element_id  # a Chinese name


def test_every_glue_operation_declares_its_signature():
    """Deploy checks service tasks against the signatures: an operation without one could not be called."""
    import workflows.glue as glue

    assert set(glue.OPERATIONS) == set(glue.SIGNATURES)


def test_a_loop_through_no_gateway_is_refused_wherever_it_sits_and_one_through_a_gateway_deploys():
    """Past a gateway, the loop b ⇄ c was a refusal at every step reaching it (SpiffWorkflow's prediction of it
    never ends); a stored version with one still loads, so its cases do."""
    from tests.conformance.bpmn import definitions, end, flow, start, user

    def loop(back: str) -> bytes:
        body = (start() + user("a") + '<bpmn:exclusiveGateway id="g" default="f_done"/>' + user("b") + user("c")
                + '<bpmn:exclusiveGateway id="again"/>' + end("end_done")
                + flow("start", "a") + flow("a", "g") + flow("g", "end_done", flow_id="f_done")
                + flow("g", "b", "ok") + flow("b", "c") + back)
        return definitions(KEY, body, {"org_dept": ["a", "b", "c"]})

    with pytest.raises(DeploymentError) as refused:
        compile_process(KEY, loop(flow("c", "b")), {}, ROLES, limits=DeployLimits())
    assert [(p.element_id, "排他网关" in p.message) for p in refused.value.problems] == [("b", True)]
    compile_process(KEY, loop(flow("c", "b")), {}, ROLES)  # a stored version parsed again
    compile_process(KEY, loop(flow("c", "again") + flow("again", "b")), {}, ROLES, limits=DeployLimits())
