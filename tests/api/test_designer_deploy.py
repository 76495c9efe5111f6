"""ISSUE 3 — deploying a process: every validation problem at once, warnings, uploads, `cadreflow deploy`."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from tests.api.support import assert_error
from tests.conftest import TEST_SECRET_KEY
from tests.engine.bpmn_builder import KEY, decision_table, document, form_schema, line_of, script_process

BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"
ASSESSMENT = "annual_assessment"
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{3,}")


def deploy(api, key, body, as_="designer"):
    return api.post(f"/api/processes/{key}/versions", as_=as_, data=body, content_type="application/xml")


def deploy_files(api, key, files, as_="designer"):
    data = {f"file{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate(files.items())}
    return api.post(f"/api/processes/{key}/versions", as_=as_, data=data, content_type="multipart/form-data")


def problems_of(response):
    """The 422 `errors` list, each with a bilingual message."""
    error = assert_error(response, 422)
    errors = error["errors"]
    assert isinstance(errors, list) and errors, error
    for problem in errors:
        assert isinstance(problem["message"], str) and problem["message"], problem
    return errors


def bilingual(message):
    return bool(CJK.search(message)) and bool(LATIN.search(message))


def shipped_assessment(marker="第二版"):
    """annual_assessment.bpmn with its name changed (so it is new content), and its DMN."""
    text = (BPMN_DIR / "annual_assessment.bpmn").read_text(encoding="utf-8")
    changed = text.replace('name="民主测评"', f'name="民主测评（{marker}）"', 1)
    assert changed != text
    return changed.encode(), (BPMN_DIR / "assessment_grade.dmn").read_bytes()


USER_FORM = form_schema()
BAD_FORM = form_schema('{"type": "object", "properties": {"a": {"type": 5}}}')
NOT_JSON_FORM = form_schema("{not json")
BROKEN_BODY = (
    '    <bpmn:startEvent id="start"/>\n'
    '    <bpmn:scriptTask id="broken_script" name="脚本">\n'
    "      <bpmn:script>x = (</bpmn:script>\n"
    "    </bpmn:scriptTask>\n"
    f'    <bpmn:userTask id="t_nolane" name="无泳道"><bpmn:extensionElements>{USER_FORM}'
    "</bpmn:extensionElements></bpmn:userTask>\n"
    f'    <bpmn:userTask id="t_badlane" name="错泳道"><bpmn:extensionElements>{USER_FORM}'
    "</bpmn:extensionElements></bpmn:userTask>\n"
    '    <bpmn:userTask id="t_noform" name="无表单"/>\n'
    '    <bpmn:userTask id="t_badform" name="坏表单"><bpmn:extensionElements>'
    f"{BAD_FORM}"
    "</bpmn:extensionElements></bpmn:userTask>\n"
    '    <bpmn:userTask id="t_notjson" name="非JSON表单"><bpmn:extensionElements>'
    f"{NOT_JSON_FORM}</bpmn:extensionElements></bpmn:userTask>\n"
    '    <bpmn:exclusiveGateway id="gw_hostile" name="网关" default="f_default"/>\n'
    '    <bpmn:sequenceFlow id="f_cond" sourceRef="gw_hostile" targetRef="end_done">\n'
    "      <bpmn:conditionExpression>__import__('os').system('true')</bpmn:conditionExpression>\n"
    "    </bpmn:sequenceFlow>\n"
    '    <bpmn:sequenceFlow id="f_default" sourceRef="gw_hostile" targetRef="end_done"/>\n'
    '    <bpmn:boundaryEvent id="late_timer" attachedToRef="t_noform" cancelActivity="false">\n'
    '      <bpmn:timerEventDefinition id="timer_def">'
    "<bpmn:timeDuration>open('/etc/passwd').read()</bpmn:timeDuration></bpmn:timerEventDefinition>\n"
    "    </bpmn:boundaryEvent>\n"
    '    <bpmn:sequenceFlow id="f_late" sourceRef="late_timer" targetRef="late_end"/>\n'
    '    <bpmn:endEvent id="late_end"/>\n'
    '    <bpmn:endEvent id="end_done"><bpmn:terminateEventDefinition id="term"/></bpmn:endEvent>\n'
    + "".join(f'    <bpmn:sequenceFlow id="f_{a}" sourceRef="{a}" targetRef="{b}"/>\n' for a, b in [
        ("start", "broken_script"), ("broken_script", "t_nolane"), ("t_nolane", "t_badlane"),
        ("t_badlane", "t_noform"), ("t_noform", "t_badform"), ("t_badform", "t_notjson"),
        ("t_notjson", "gw_hostile")])
)
BROKEN_ELEMENTS = ("broken_script", "t_nolane", "lane_bogus_role", "t_noform", "t_badform", "t_notjson", "gw_hostile",
                   "late_timer")


# Validation: every problem at once, each with its element, its line and a bilingual message.

def test_broken_file_reports_every_problem_with_element_and_line(api):
    """A file with eight different faults gets all of them in one 422, each with element id, line, 中文 + English."""
    bpmn = document(BROKEN_BODY, {"bogus_role": ["t_badlane"], "org_dept": ["t_noform", "t_badform", "t_notjson"]})
    problems = problems_of(deploy(api, KEY, bpmn))
    by_element = {}
    for problem in problems:
        by_element.setdefault(problem.get("element_id"), []).append(problem)
    assert set(BROKEN_ELEMENTS) <= set(by_element), problems
    for element in BROKEN_ELEMENTS:
        element_line = line_of(bpmn, f'id="{element}"')
        for problem in by_element[element]:
            assert isinstance(problem.get("line"), int), problem
            assert element_line <= problem["line"] <= element_line + 3, (element, element_line, problem)
            assert bilingual(problem["message"]), problem
    assert any("lane" in p["message"] for p in by_element["t_nolane"])
    assert any("bogus_role" in p["message"] for p in by_element["lane_bogus_role"])  # the lane names the role
    assert api.get(f"/api/processes/{KEY}").status_code == 404


def test_xml_syntax_error_reports_its_line(api):
    """Malformed XML → 422 with the line of the fault and a bilingual message; nothing deployed."""
    bpmn = script_process("x = 1").replace(b'<bpmn:userTask id="review" name="', b'<bpmn:userTask id="review" name=')
    problems = problems_of(deploy(api, KEY, bpmn))
    assert problems[0]["line"] == line_of(bpmn, 'id="review"')
    assert bilingual(problems[0]["message"])
    assert api.get(f"/api/processes/{KEY}").status_code == 404


def test_not_xml_at_all_is_422(api):
    """A body that is not XML → 422 with the error shape."""
    problems = problems_of(deploy(api, KEY, b"this is not a diagram"))
    assert problems[0].get("line") == 1


def test_xsd_errors_name_element_line_in_both_languages(api):
    """Schema (XSD) violations are all reported, each with its element id, line and a 中文 + English message."""
    bpmn = (script_process("x = 1", timer='deadline("rectification")')
            .replace(b'cancelActivity="false"', b'cancelActivity="perhaps"')
            .replace(b'<bpmn:userTask id="review"', b'<bpmn:userTask id="review" startQuantity="many"'))
    problems = problems_of(deploy(api, KEY, bpmn))
    lines = {p.get("line"): p for p in problems}
    expected = {"review": line_of(bpmn, 'id="review"'), "review_late": line_of(bpmn, 'id="review_late"')}
    assert set(expected.values()) <= set(lines), problems
    for element, line in expected.items():
        assert lines[line].get("element_id") == element, lines[line]
        assert bilingual(lines[line]["message"]), lines[line]


def test_unknown_process_id_is_refused(api):
    """A file whose executable process is not the key of the URL → 422 naming the key."""
    problems = problems_of(deploy(api, "other_process", script_process("x = 1")))
    assert any("other_process" in p["message"] and bilingual(p["message"]) for p in problems)
    assert api.get("/api/processes/other_process").status_code == 404


def test_missing_dmn_reported_with_line_beside_other_problems(api):
    """A decision called but not uploaded is reported with its element and line, together with the other faults."""
    bpmn = script_process("import os", decision="no_such_table")
    problems = problems_of(deploy(api, KEY, bpmn))
    decide = [p for p in problems if p.get("element_id") == "decide"]
    assert decide and "no_such_table" in decide[0]["message"]
    assert decide[0].get("line") == line_of(bpmn, 'id="decide"')
    assert any(p.get("element_id") == "run_script" for p in problems), problems


def test_shipped_bpmn_without_its_dmn_is_refused(api):
    """accountability.bpmn uploaded without sanction_ladder.dmn → 422 naming propose_sanction."""
    problems = problems_of(deploy(api, "accountability", (BPMN_DIR / "accountability.bpmn").read_bytes()))
    assert any(p.get("element_id") == "propose_sanction" for p in problems), problems
    assert [v["version"] for v in api.get("/api/processes/accountability").json["versions"]] == [1]


CODE_PLACES = {
    "script": lambda code: script_process(code),
    "condition": lambda code: script_process("x = 1", condition=code),
    "timer": lambda code: script_process("x = 1", timer=code),
    "pre_script": lambda code: script_process("x = 1", pre_script=code),
    "post_script": lambda code: script_process("x = 1", post_script=code),
    "assignee": lambda code: script_process("x = 1", assignee=code),
    "service_parameter": lambda code: script_process("x = 1", service_param=code),
}
CODE_ELEMENT = {"script": "run_script", "condition": "gw_check", "timer": "review_late", "pre_script": "review",
                "post_script": "review", "assignee": "review", "service_parameter": "call_service"}


@pytest.mark.parametrize("place", list(CODE_PLACES))
@pytest.mark.parametrize("code", ["x = (", "__import__('os').getcwd()"], ids=["syntax", "sandbox"])
def test_code_that_does_not_compile_or_is_refused_names_its_element(api, place, code):
    """Scripts, conditions, timers, pre/post scripts, assignees, service parameters: bad code → 422 on its element."""
    bpmn = CODE_PLACES[place](code)
    problems = problems_of(deploy(api, KEY, bpmn))
    element = CODE_ELEMENT[place]
    found = [p for p in problems if p.get("element_id") == element]
    assert found, problems
    assert found[0]["line"] == line_of(bpmn, f'id="{element}"') and bilingual(found[0]["message"])


@pytest.mark.parametrize("entry", ["input", "rule", "output"])
def test_dmn_entries_that_are_refused_name_the_rule_task(api, entry):
    """A DMN input expression, input entry or output entry refused by the sandbox → 422 on the rule task."""
    hostile = "__import__('os').getcwd()"
    parts = {"input": (hostile, '"a"', '"b"'), "rule": ("x", f"== {hostile}", '"b"'), "output": ("x", '"a"', hostile)}
    dmn = decision_table("table_x", *parts[entry])
    bpmn = script_process("x = 1", decision="table_x")
    problems = problems_of(deploy_files(api, KEY, {"p.bpmn": bpmn, "table_x.dmn": dmn}))
    assert any(p.get("element_id") == "decide" for p in problems), problems


@pytest.mark.parametrize(("table", "named"), [('hitPolicy="BOGUS"', "BOGUS"),
                                               ('hitPolicy="COLLECT" aggregation="FOO"', "FOO"),
                                               ('hitPolicy="FIRST" aggregation="SUM"', "SUM")])
def test_unknown_hit_policies_and_aggregations_are_refused(api, table, named):
    """A hit policy or aggregation DMN 1.3 does not know would silently decide as FIRST or collect lists:
    refused on the rule task. COLLECT with SUM deploys."""
    dmn = decision_table("table_x", "x", "1", '"b"').replace(b'hitPolicy="UNIQUE"', table.encode())
    bpmn = script_process("x = 1", decision="table_x")
    problems = problems_of(deploy_files(api, KEY, {"p.bpmn": bpmn, "table_x.dmn": dmn}))
    found = [p for p in problems if p.get("element_id") == "decide"]
    assert found and named in found[0]["message"] and bilingual(found[0]["message"]), problems
    collect = dmn.replace(table.encode(), b'hitPolicy="COLLECT" aggregation="SUM"')
    assert deploy_files(api, KEY, {"p.bpmn": bpmn, "table_x.dmn": collect}).status_code == 201


def test_form_rule_that_does_not_compile_is_refused(api):
    """An `x-validate` rule whose expression is refused → 422 on the user task."""
    form = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
            "x-validate": [{"expr": "open('/etc/passwd')", "field": "ok", "message": "no"}]}
    bpmn = script_process("x = 1").replace(form_schema().encode(), form_schema(form).encode())
    problems = problems_of(deploy(api, KEY, bpmn))
    assert any(p.get("element_id") == "review" for p in problems), problems


MALFORMED_EXTENSIONS = {
    "validate-not-a-list": ({"x-validate": 5}, "x-validate"),
    "validate-field-a-list": ({"x-validate": [{"expr": "False", "field": ["ok"], "message": "m"}]}, "field"),
    "min-sum-text": ({"x-min-sum": "abc"}, "x-min-sum"),
    "min-sum-min-text": ({"x-min-sum": {"fields": ["ok"], "min": "x"}}, "min"),
    "min-sum-no-fields": ({"x-min-sum": {"min": 1}}, "fields"),
}


@pytest.mark.parametrize("name", list(MALFORMED_EXTENSIONS))
def test_malformed_form_extensions_are_refused_naming_the_keyword(api, name):
    """`x-validate` / `x-min-sum` of a shape completing the task would trip over → 422 on the user task,
    naming what is wrong, on validate as on deploy."""
    extension, named = MALFORMED_EXTENSIONS[name]
    form = {"type": "object", "properties": {"ok": {"type": "boolean"}}, **extension}
    bpmn = script_process("x = 1").replace(form_schema().encode(), form_schema(form).encode())
    for path in (f"/api/processes/{KEY}/validate", f"/api/processes/{KEY}/versions"):
        response = api.post(path, as_="designer", data=bpmn, content_type="application/xml")
        found = [p for p in problems_of(response) if p.get("element_id") == "review"]
        assert found and named in found[0]["message"] and bilingual(found[0]["message"]), (path, found)


# Warnings.

def test_unreachable_elements_and_gateways_without_default_are_warnings(api):
    """Unreachable elements and a conditional gateway without default flow deploy (201) with `warnings`."""
    orphan = (f'    <bpmn:userTask id="orphan" name="孤立"><bpmn:extensionElements>{USER_FORM}'
              "</bpmn:extensionElements></bpmn:userTask>\n")
    bpmn = (script_process("x = 1", condition="x == 1")
            .replace(b' default="f_skip"', b"")
            .replace(b'<bpmn:sequenceFlow id="f_skip" sourceRef="gw_check" targetRef="end_skipped"/>',
                     b'<bpmn:sequenceFlow id="f_skip" sourceRef="gw_check" targetRef="end_skipped">'
                     b"<bpmn:conditionExpression>x != 1</bpmn:conditionExpression></bpmn:sequenceFlow>")
            .replace(b"<bpmn:flowNodeRef>review</bpmn:flowNodeRef>",
                     b"<bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>orphan</bpmn:flowNodeRef>")
            .replace(b"  </bpmn:process>", orphan.encode() + b"  </bpmn:process>"))
    response = deploy(api, KEY, bpmn)
    assert response.status_code == 201, response.json
    warnings = {w.get("element_id"): w for w in response.json["warnings"]}
    assert {"orphan", "gw_check"} <= set(warnings), warnings
    assert warnings["orphan"]["line"] == line_of(bpmn, 'id="orphan"')
    assert warnings["gw_check"]["line"] == line_of(bpmn, 'id="gw_check"')
    assert all(bilingual(w["message"]) for w in warnings.values())


def test_clean_file_has_no_warnings(api):
    """A valid, fully connected file deploys with an empty warnings list."""
    response = deploy(api, KEY, script_process("x = 1"))
    assert response.status_code == 201 and response.json["warnings"] == []
    assert (response.json["key"], response.json["version"], response.json["created"]) == (KEY, 1, True)


# Uploads.

def test_multipart_with_bpmn_and_dmn_deploys_a_new_version(api):
    """Multipart with the BPMN and its DMN → 201 version 2; new cases start on it with the changed name."""
    bpmn, dmn = shipped_assessment()
    response = deploy_files(api, ASSESSMENT, {"annual_assessment.bpmn": bpmn, "assessment_grade.dmn": dmn})
    assert response.status_code == 201, response.json
    assert (response.json["version"], response.json["created"]) == (2, True)
    api.create_cadre("c1")
    case = api.start(ASSESSMENT, "c1", as_="org_dept", year=2025)
    assert case["process_version"] == 2 and case["open_tasks"][0]["name"] == "民主测评（第二版）"


def test_raw_body_without_needed_dmn_but_multipart_with_it(api):
    """The same BPMN is refused as a bare body (its DMN is missing) and accepted with the DMN in multipart."""
    bpmn, dmn = shipped_assessment()
    assert deploy(api, ASSESSMENT, bpmn).status_code == 422
    assert deploy_files(api, ASSESSMENT, {"a.bpmn": bpmn, "assessment_grade.dmn": dmn}).status_code == 201


@pytest.mark.parametrize("files", [
    {},
    {"assessment_grade.dmn": (BPMN_DIR / "assessment_grade.dmn").read_bytes()},
    {"one.bpmn": script_process("x = 1"), "two.bpmn": script_process("x = 2")},
    {"notes.txt": b"hello"},
], ids=["nothing", "only-dmn", "two-bpmn", "other-file"])
def test_multipart_needs_exactly_one_bpmn(api, files):
    """Multipart without exactly one .bpmn file → 400 with the error shape."""
    response = deploy_files(api, KEY, files) if files else api.post(
        f"/api/processes/{KEY}/versions", as_="designer", data={"x": "y"}, content_type="multipart/form-data")
    assert_error(response, 400)
    assert api.get(f"/api/processes/{KEY}").status_code == 404


def test_empty_body_is_400(api):
    """An empty body → 400."""
    assert_error(deploy(api, KEY, b""), 400)


@pytest.mark.parametrize(("user", "status"), [("org_dept", 403), ("org_head", 403), ("discipline", 403),
                                              ("norole", 403), (None, 401)])
def test_only_designers_and_admins_deploy(api, user, status):
    """Deploying needs the designer or admin role: others 403, anonymous 401; nothing is deployed."""
    assert_error(deploy(api, KEY, script_process("x = 1"), as_=user), status)
    assert api.get(f"/api/processes/{KEY}").status_code == 404


def test_admin_may_deploy(api):
    """An admin deploys too (201), recorded as the author."""
    response = deploy(api, KEY, script_process("x = 1"), as_="admin")
    assert response.status_code == 201 and response.json["deployed_by"] == "admin"


# The command line.

def write_files(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        (folder / name).write_bytes(content)
        paths.append(str(folder / name))
    return paths


def test_cli_deploy_prints_versions_then_unchanged(app, api, tmp_path):
    """`cadreflow deploy FILES` deploys and prints the version; a second run prints unchanged."""
    bpmn, dmn = shipped_assessment("命令行")
    paths = write_files(tmp_path / "cli", {"annual_assessment.bpmn": bpmn, "assessment_grade.dmn": dmn})
    runner = app.test_cli_runner()
    first = runner.invoke(args=["deploy", *paths])
    assert first.exit_code == 0, first.output
    assert "annual_assessment v2 deployed" in first.output
    second = runner.invoke(args=["deploy", *paths])
    assert second.exit_code == 0, second.output
    assert "annual_assessment v2 unchanged" in second.output and "deployed" not in second.output
    detail = api.get(f"/api/processes/{ASSESSMENT}").json
    assert [v["version"] for v in detail["versions"]] == [1, 2]


def test_cli_deploy_of_the_shipped_folder_is_unchanged(app):
    """Deploying the shipped bpmn/ folder again changes nothing: every process is reported unchanged at v1."""
    result = app.test_cli_runner().invoke(args=["deploy", str(BPMN_DIR)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == len(list(BPMN_DIR.glob("*.bpmn")))
    assert all(line.endswith("v1 unchanged") for line in lines), lines


def test_console_entry_point_deploys_then_refuses_a_broken_file(app, api, tmp_path):
    """The real entry point (`service.cli.main`) on the test database: deploys, then exits 1 naming elements."""
    good, dmn = shipped_assessment("进程")
    broken = document(BROKEN_BODY, {"bogus_role": ["t_badlane"]})
    paths = write_files(tmp_path / "proc", {"annual_assessment.bpmn": good, "assessment_grade.dmn": dmn})
    broken_path = write_files(tmp_path / "proc-broken", {f"{KEY}.bpmn": broken})
    env = {**os.environ, "CADREFLOW_DATABASE_URL": app.config["CADREFLOW"]["DATABASE_URL"],
           "CADREFLOW_SECRET_KEY": TEST_SECRET_KEY}
    command = [sys.executable, "-c", "from service.cli import main; main()", "deploy"]
    ok = subprocess.run([*command, *paths], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "annual_assessment v2 deployed" in ok.stdout
    bad = subprocess.run([*command, *broken_path], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0
    assert "lane_bogus_role" in bad.stderr and "broken_script" in bad.stderr
    assert [v["version"] for v in api.get(f"/api/processes/{ASSESSMENT}").json["versions"]] == [1, 2]
    assert api.get(f"/api/processes/{KEY}").status_code == 404


def test_cli_deploy_broken_file_fails_with_element_ids(app, api, tmp_path):
    """A broken file → non-zero exit, each problem printed with its element id; nothing deployed."""
    bpmn = document(BROKEN_BODY, {"bogus_role": ["t_badlane"], "org_dept": ["t_noform", "t_badform", "t_notjson"]})
    paths = write_files(tmp_path / "broken", {f"{KEY}.bpmn": bpmn})
    result = app.test_cli_runner().invoke(args=["deploy", *paths])
    assert result.exit_code != 0
    for element in BROKEN_ELEMENTS:
        assert element in result.output, (element, result.output)
    assert api.get(f"/api/processes/{KEY}").status_code == 404


def _versions(api, key):
    return [v["version"] for v in api.get(f"/api/processes/{key}").json["versions"]]


def deploy_based_on(api, base, marker="第二版"):
    """The assessment with a changed name and its DMN, deployed as edited from version `base`."""
    bpmn, dmn = shipped_assessment(marker)
    files = {"file0": (io.BytesIO(bpmn), "annual_assessment.bpmn"), "file1": (io.BytesIO(dmn), "grade.dmn")}
    return api.post(f"/api/processes/{ASSESSMENT}/versions?base_version={base}", data=files,
                    content_type="multipart/form-data")


def test_a_deploy_edited_from_an_older_version_is_refused_and_stores_nothing(api):
    """Two designers edit v1; the first deploys v2; the second's deploy, still based on v1, would silently replace
    v2's change, so it is a 409 naming both versions, and based on v2 it deploys as v3."""
    assert deploy_based_on(api, 1, "甲").status_code == 201
    refused = assert_error(deploy_based_on(api, 1, "乙"), 409)
    assert "第 1 版" in refused["message"] and "第 2 版" in refused["message"] and bilingual(refused["message"])
    assert _versions(api, ASSESSMENT) == [1, 2]
    again = deploy_based_on(api, 2, "乙")
    assert (again.status_code, again.json["version"], again.json["created"]) == (201, 3, True)


def test_a_stale_base_with_a_diagram_already_deployed_creates_nothing_and_refuses_nothing(api):
    assert deploy_based_on(api, 1).json["version"] == 2
    same = deploy_based_on(api, 1)
    assert (same.status_code, same.json["created"], same.json["version"]) == (201, False, 2)


def test_base_version_0_says_the_key_was_taken_meanwhile(api):
    refused = assert_error(deploy_based_on(api, 0), 409)
    assert "已被他人占用" in refused["message"]
    assert _versions(api, ASSESSMENT) == [1]


@pytest.mark.parametrize("value", ["x", "-1", "1.5", str(2**31)])
def test_a_malformed_base_version_is_a_400(api, value):
    assert "base_version" in assert_error(deploy_based_on(api, value), 400)["fields"]
    assert _versions(api, ASSESSMENT) == [1]
