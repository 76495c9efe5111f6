"""ISSUE 3 — hostile uploads are refused or contained: nothing read, nothing run, nothing leaked, server serving."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from tests.api.support import CLIENT_ERRORS, assert_error, shared_api
from tests.engine.bpmn_builder import KEY, decision_table, form_schema, named_chain, script_process

BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"
UPLOAD_LIMIT = 60_000  # bytes: every shipped file fits, and tests can go past it cheaply
SCRIPT_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def hostile_api(template, tmp_path_factory):
    """One app for the module: a small upload limit, a short script time limit, cadre c1."""
    # No attachments here: the body limit is then twice the upload limit (service._max_body).
    yield from shared_api(template, tmp_path_factory, "hostile-designer", MAX_UPLOAD_BYTES=UPLOAD_LIMIT,
                          SCRIPT_TIMEOUT_SECONDS=SCRIPT_TIMEOUT, MAX_ATTACHMENT_BYTES=1)


@pytest.fixture
def secret_file(tmp_path):
    """A file whose content must never show up in a response."""
    token = f"SECRET-{uuid.uuid4().hex}"
    path = tmp_path / "secret.txt"
    path.write_text(token + "\n", encoding="utf-8")
    return path, token


def unique_key():
    return f"hostile_{uuid.uuid4().hex[:10]}"


def deploy(api, key, body, content_type="application/xml"):
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=body, content_type=content_type)


def deploy_files(api, key, files):
    data = {f"file{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate(files.items())}
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=data, content_type="multipart/form-data")


def assert_still_serving(api, key=None):
    """The server answers a follow-up read; the refused process was not deployed."""
    assert api.get("/api/processes").status_code == 200
    if key is not None:
        assert api.get(f"/api/processes/{key}").status_code == 404


def assert_no_leak(response, *needles):
    text = response.get_data(as_text=True)
    for needle in ("root:x:0:0", "/bin/bash", "/bin/sh", *needles):
        assert needle not in text, needle


def with_doctype(key, doctype, documentation):
    """A valid process of `key` with a DOCTYPE after the XML declaration and text in a documentation element."""
    text = script_process("x = 1", key=key).decode()
    declaration, rest = text.split("\n", 1)
    rest = rest.replace('<bpmn:startEvent id="start" name="开始"/>',
                        f'<bpmn:startEvent id="start" name="开始"><bpmn:documentation>{documentation}'
                        "</bpmn:documentation></bpmn:startEvent>")
    return f"{declaration}\n{doctype}\n{rest}"


# XML attacks.

def test_xxe_is_refused_and_the_file_never_read(hostile_api, secret_file):
    """An external entity on a local file → 422, and neither the file nor /etc/passwd appears in the answer."""
    path, token = secret_file
    for target in (path.as_uri(), "file:///etc/passwd"):
        key = unique_key()
        body = with_doctype(key, f'<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "{target}">]>', "&xxe;").encode()
        response = deploy(hostile_api, key, body)
        assert_error(response, 422)
        assert_no_leak(response, token)
        assert_still_serving(hostile_api, key)


def test_xxe_in_a_dmn_file_is_refused(hostile_api, secret_file):
    """A DMN uploaded beside a BPMN with an external entity → 422 without the file's content."""
    path, token = secret_file
    dmn = (BPMN_DIR / "assessment_grade.dmn").read_text(encoding="utf-8").replace(
        "?>", f'?>\n<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "{path.as_uri()}">]>', 1).replace(
        "<description>不称职得票率超过三分之一：认定为不称职</description>", "<description>&xxe;</description>")
    assert "&xxe;" in dmn
    files = {"annual_assessment.bpmn": (BPMN_DIR / "annual_assessment.bpmn").read_bytes(),
             "assessment_grade.dmn": dmn.encode()}
    response = deploy_files(hostile_api, "annual_assessment", files)
    assert_error(response, 422)
    assert_no_leak(response, token)
    assert [v["version"] for v in hostile_api.get("/api/processes/annual_assessment").json["versions"]] == [1]


def test_billion_laughs_is_refused_quickly(hostile_api):
    """An entity-expansion bomb → 422 within a second, with a short answer."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    key = unique_key()
    began = time.monotonic()
    response = deploy(hostile_api, key, with_doctype(key, f"<!DOCTYPE definitions [{entities}]>", "&lol9;").encode())
    assert time.monotonic() - began < 5.0  # expanded, the bomb is a billion copies: minutes, not seconds
    assert_error(response, 422)
    assert len(response.data) < 5_000 and b"lollollol" not in response.data
    assert_still_serving(hostile_api, key)


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE definitions SYSTEM "http://127.0.0.1:9/evil.dtd">',
    '<!doctype definitions PUBLIC "-//x//y" "file:///etc/passwd">',
    '<!DOCTYPE definitions [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
], ids=["external-dtd", "lowercase-public", "parameter-entity"])
def test_other_doctypes_are_refused(hostile_api, doctype):
    """External DTDs, lower-case doctypes and parameter entities → 422, nothing fetched or leaked."""
    key = unique_key()
    response = deploy(hostile_api, key, with_doctype(key, doctype, "文档").encode())
    assert_error(response, 422)
    assert_no_leak(response)
    assert_still_serving(hostile_api, key)


def test_utf16_doctype_refused(hostile_api, secret_file):
    """The same XXE in a UTF-16 file (no ASCII `<!DOCTYPE` bytes) → refused (422), never a 500, nothing leaked."""
    path, token = secret_file
    key = unique_key()
    text = with_doctype(key, f'<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "{path.as_uri()}">]>', "&xxe;")
    body = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    response = deploy(hostile_api, key, body)
    assert_error(response, 422)
    assert_no_leak(response, token)
    assert_still_serving(hostile_api, key)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16"])
def test_non_utf8_encodings_never_500(hostile_api, encoding):
    """A file in another encoding than UTF-8 is deployed or refused with the error shape, never a 500."""
    key = unique_key()
    text = script_process("x = 1", key=key).decode().replace('encoding="UTF-8"', f'encoding="{encoding}"')
    for chinese, latin in (("测试流程", "Procédure"), ("开始", "Début"), ("脚本", "Script"), ("审核", "Révision"),
                           ("好", "bon"), ("完成", "Fini")):
        text = text.replace(chinese, latin)
    response = deploy(hostile_api, key, text.encode(encoding.lower()))
    if response.status_code == 201:
        shown = hostile_api.get(f"/api/processes/{key}/bpmn")
        assert shown.status_code == 200 and "Procédure" in shown.get_data(as_text=True)
    else:
        assert_error(response, {400, 422})
    assert_still_serving(hostile_api)


def test_deep_xml_nesting_is_refused(hostile_api):
    """Elements nested 5,000 deep (within the size limit) → 422 with a line, quickly; server still serving."""
    key = unique_key()
    nested = "<a>" * 5_000 + "</a>" * 5_000
    body = script_process("x = 1", key=key).decode().replace(
        '<bpmn:startEvent id="start" name="开始"/>',
        f'<bpmn:startEvent id="start" name="开始"><bpmn:documentation>{nested}</bpmn:documentation></bpmn:startEvent>')
    assert len(body.encode()) < UPLOAD_LIMIT
    began = time.monotonic()
    response = deploy(hostile_api, key, body.encode())
    assert time.monotonic() - began < 5.0  # bounded parsing; generous for a shared machine
    problems = assert_error(response, 422)["errors"]
    assert isinstance(problems[0].get("line"), int)
    assert_still_serving(hostile_api, key)


NESTED = {
    "form-array": ("form", "[" * 5_000 + "]" * 5_000),
    "form-object": ("form", '{"type": "object", "properties": {"a": ' + '{"items": ' * 3_000 + "{}" + "}" * 3_002),
    "long-sum": ("condition", "1" + " + 1" * 12_000),
    "unary-chain": ("script", "x = " + "-" * 50_000 + "1"),
    "parentheses": ("script", "x = " + "(" * 300 + "1" + ")" * 300),
    "dmn-entry": ("dmn", "+".join(["1"] * 9_000)),
}


@pytest.mark.parametrize("name", list(NESTED))
def test_deeply_nested_code_and_forms_are_refused(hostile_api, name):
    """A form schema or code nested thousands deep → 422 on its element, never a 500."""
    place, text = NESTED[name]
    key = unique_key()
    if place == "form":
        bpmn = script_process("x = 1", key=key).replace(form_schema().encode(), form_schema(text).encode())
        element = "review"
    elif place == "condition":  # named by its sequence flow (the size bound) or its gateway (the compiler)
        bpmn, element = script_process("x = 1", key=key, condition=text), ("f_cond", "gw_check")
    elif place == "dmn":  # an input entry of the rule task's table
        bpmn, element = script_process("x = 1", key=key, decision="table_x"), "decide"
    else:
        bpmn, element = script_process(text, key=key), "run_script"
    assert len(bpmn) < UPLOAD_LIMIT
    files = {"p.bpmn": bpmn, "table_x.dmn": decision_table("table_x", "x", text, '"b"')} if place == "dmn" else None
    problems = assert_error(deploy_files(hostile_api, key, files) if files else deploy(hostile_api, key, bpmn),
                            422)["errors"]
    assert any(p.get("element_id") in (element if isinstance(element, tuple) else (element,))
               for p in problems), problems
    assert_still_serving(hostile_api, key)


# Oversize uploads.

def padded(key, size):
    """A valid process padded with an XML comment to `size` bytes."""
    body = script_process("x = 1", key=key)
    comment = b"<!--" + b"x" * (size - len(body) - 7) + b"-->"
    return body.replace(b"</bpmn:definitions>", comment + b"</bpmn:definitions>")


def test_upload_just_over_the_limit_is_refused(hostile_api):
    """A body over MAX_UPLOAD_BYTES (but under twice it) → 413 or 422 with the error shape; nothing deployed."""
    key = unique_key()
    assert deploy(hostile_api, key, padded(key, UPLOAD_LIMIT - 1_000)).status_code == 201
    key = unique_key()
    assert_error(deploy(hostile_api, key, padded(key, UPLOAD_LIMIT + 1_000)), {413, 422})
    assert_still_serving(hostile_api, key)


def test_upload_over_twice_the_limit_is_413(hostile_api):
    """A body over twice the limit is cut off by Flask: 413 with the JSON error shape."""
    key = unique_key()
    assert_error(deploy(hostile_api, key, padded(key, UPLOAD_LIMIT * 2 + 10_000)), 413)
    assert_still_serving(hostile_api, key)


def test_multipart_over_the_limit_is_refused(hostile_api):
    """Several files that together pass the limit → 413/422; each alone would fit."""
    key = unique_key()
    dmn = b"<?xml version='1.0'?><definitions xmlns='https://www.omg.org/spec/DMN/20191111/MODEL/'/>"
    files = {"p.bpmn": padded(key, UPLOAD_LIMIT // 2), "a.dmn": dmn + b"<!--" + b"y" * (UPLOAD_LIMIT // 2) + b"-->",
             "b.dmn": dmn}
    assert_error(deploy_files(hostile_api, key, files), {413, 422})
    assert_still_serving(hostile_api, key)


# Hostile code: refused when the diagram is deployed.

def marker_path():
    return Path(f"/tmp/pwned-{uuid.uuid4().hex}")


DEPLOY_REFUSED = {
    "import-os-system": "__import__('os').system('touch {marker}')",
    "import-statement": "import os\nos.system('touch {marker}')",
    "from-import": "from subprocess import run\nrun(['touch', '{marker}'])",
    "open-write": "open('{marker}', 'w').write('x')",
    "open-read": "x = open('/etc/passwd').read()",
    "exec": "exec(\"open('{marker}', 'w')\")",
    "eval": "x = eval(\"__import__('os')\")",
    "compile": "x = compile('1', 'f', 'eval')",
    "subclasses": "x = ().__class__.__base__.__subclasses__()",
    "globals": "x = globals()",
    "builtins-dunder": "x = __builtins__",
    "frame-walk": "x = (lambda: 0).__code__",
}


@pytest.mark.parametrize("name", list(DEPLOY_REFUSED))
def test_hostile_scripts_are_refused_at_deploy(hostile_api, name):
    """Imports, open, exec/eval/compile, dunders → 422 on the script task; the marker file never appears."""
    marker = marker_path()
    key = unique_key()
    response = deploy(hostile_api, key, script_process(DEPLOY_REFUSED[name].format(marker=marker), key=key))
    if response.status_code == 201:  # a contained script must at least never run its payload
        started = hostile_api.post("/api/cases", json={"process": key, "cadre_id": "c1", "data": {}})
        assert started.status_code in (201, 409), started.json
        assert not marker.exists()
        pytest.fail(f"{name} was deployed instead of refused: {response.json}")
    problems = assert_error(response, 422)["errors"]
    assert any(p.get("element_id") == "run_script" for p in problems), problems
    assert_no_leak(response)
    assert not marker.exists()
    assert_still_serving(hostile_api, key)


@pytest.mark.parametrize("place", ["condition", "timer", "assignee", "service_param", "pre_script"])
def test_hostile_code_is_refused_wherever_it_sits(hostile_api, place):
    """`__import__('os').system(...)` in a condition, timer, assignee, service parameter or pre-script → 422."""
    marker = marker_path()
    key = unique_key()
    code = f"__import__('os').system('touch {marker}')"
    response = deploy(hostile_api, key, script_process("x = 1", key=key, **{place: code}))
    assert_error(response, 422)
    assert not marker.exists()
    assert_still_serving(hostile_api, key)


def event_process(key: str, place: str, code: str) -> bytes:
    """start → `tell` (throws a message or signal) → `wait` (catches the message) → end, `code` in `place`."""
    from xml.sax.saxutils import escape

    from tests.conformance.bpmn import chain, definitions, end, message, signal, start

    code = escape(code)
    path = code if place == "message_path" else "ref"
    correlation = ('<bpmn:correlationProperty id="ref" name="ref"><bpmn:correlationPropertyRetrievalExpression '
                   f'messageRef="msg_news"><bpmn:messagePath>{path}</bpmn:messagePath>'
                   "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>")
    own = code if place == "process_correlation" else "cadre_id"
    process_correlation = ("<spiffworkflow:processVariableCorrelation><spiffworkflow:propertyId>ref</spiffworkflow:"
                           f"propertyId><spiffworkflow:expression>{own}"
                           "</spiffworkflow:expression></spiffworkflow:processVariableCorrelation>")
    if place == "signal_payload":
        top = signal("alarm").replace("/>", f"><bpmn:extensionElements><spiffworkflow:payloadExpression>{code}"
                                             "</spiffworkflow:payloadExpression></bpmn:extensionElements></bpmn:signal>")
        thrown = '<bpmn:signalEventDefinition id="tell_def" signalRef="sig_alarm"/>'
    else:
        top = signal("alarm")
        payload = code if place == "message_payload" else escape("{'ref': cadre_id}")
        thrown = ('<bpmn:messageEventDefinition id="tell_def" messageRef="msg_news"><bpmn:extensionElements>'
                  f"<spiffworkflow:messagePayload>{payload}</spiffworkflow:messagePayload></bpmn:extensionElements>"
                  "</bpmn:messageEventDefinition>")
    caught = ('<bpmn:messageEventDefinition id="wait_def" messageRef="msg_news"><bpmn:extensionElements>'
              f"<spiffworkflow:messageVariable>news</spiffworkflow:messageVariable>{process_correlation}"
              "</bpmn:extensionElements></bpmn:messageEventDefinition>")
    body = (start() + f'<bpmn:intermediateThrowEvent id="tell">{thrown}</bpmn:intermediateThrowEvent>'
            + f'<bpmn:intermediateCatchEvent id="wait">{caught}</bpmn:intermediateCatchEvent>' + end()
            + chain("start", "tell", "wait", "end"))
    return definitions(key, body, top=message("news") + correlation + top)


@pytest.mark.parametrize("place, element", [("message_payload", "tell"), ("message_path", "tell"),
                                            ("process_correlation", "wait"), ("signal_payload", "tell")])
def test_hostile_code_in_events_is_refused_at_deploy(hostile_api, place, element):
    """A message's payload and correlations and a signal's payload run in cases as the scripts do: deploy compiles
    them too, and refuses forbidden code naming the event, instead of deploying an incident for every case."""
    marker = marker_path()
    key = unique_key()
    response = deploy(hostile_api, key, event_process(key, place, f"__import__('os').system('touch {marker}')"))
    problems = assert_error(response, 422)["errors"]
    assert any(p.get("element_id") == element for p in problems), problems
    assert not marker.exists()
    assert_still_serving(hostile_api, key)


def test_an_event_payload_longer_than_any_code_may_be_is_refused_at_deploy(hostile_api):
    key = unique_key()
    response = deploy(hostile_api, key, event_process(key, "message_payload", "[" + "1, " * 10_000 + "]"))
    problems = assert_error(response, 422)["errors"]
    assert any(p.get("element_id") == "tell_def" and "max_code_chars" in p["message"] for p in problems), problems


def test_events_with_plain_code_deploy(hostile_api):
    key = unique_key()
    response = deploy(hostile_api, key, event_process(key, "message_payload", "{'ref': cadre_id}"))
    assert response.status_code == 201, response.json


def multi_instance(key: str, cardinality: str, condition: str = "") -> bytes:
    """A process whose one task runs once per `cardinality`, ending early on `condition` (the conformance suite's
    ballot)."""
    from tests.conformance.bpmn import chain, definitions, end, start
    from tests.conformance.constructs import _ballot, lane

    body = start() + _ballot(False, condition, cardinality) + end() + chain("start", "ballot", "end")
    return definitions(key, body, lane("ballot"))


@pytest.mark.parametrize("cardinality, condition, says", [
    ("²", "", "loop cardinality does not compile"),  # str.isdigit holds for "²", which int refuses: was a 500
    ("9" * 5000, "", "999999999999… instances"),  # too many digits for int: was a 500
    ("len(voters", "", "loop cardinality does not compile"),
    ("3", "__import__('os')", "completion condition does not compile"),
])
def test_a_multi_instance_task_s_expressions_are_checked_at_deploy(hostile_api, cardinality, condition, says):
    key = unique_key()
    response = deploy(hostile_api, key, multi_instance(key, cardinality, condition))
    assert_error(response, 422)
    assert says in str(response.json), response.json
    assert_still_serving(hostile_api, key)


# Hostile code that compiles: contained at run time as an incident.

RUNTIME_CONTAINED = {
    "endless-loop": "while True:\n    pass",
    "one-line-loop": "while True: pass",
    "huge-string": 'x = "a" * 10**9',
    "huge-power": "x = 10**10**10",
    "huge-shift": "x = 1 << 10**8",
    "huge-list": "x = [0] * 10**9",
    "growing-memory": "x = [[0] * 1000000 for i in range(1000)]",
    "padding": "x = 'a'.ljust(10**9)",
    "recursion": "def f(n):\n    return f(n + 1)\nx = f(0)",
    "getattr-dunder": "x = getattr((), '__cla' + 'ss__')",
    "huge-range": "x = list(range(10**12))",
    "format-dunder": "x = '{0.__class__}'.format(1)",
}


@pytest.mark.parametrize("name", list(RUNTIME_CONTAINED))
def test_runaway_scripts_become_incidents(hostile_api, name):
    """Endless loops, huge values, deep recursion: the case starts in incident at the script, quickly."""
    key = unique_key()
    response = deploy(hostile_api, key, script_process(RUNTIME_CONTAINED[name], key=key))
    if response.status_code == 422:  # refused outright is fine too
        assert_still_serving(hostile_api, key)
        return
    assert response.status_code == 201, response.json
    began = time.monotonic()
    started = hostile_api.post("/api/cases", json={"process": key, "cadre_id": "c1", "data": {}})
    assert time.monotonic() - began < SCRIPT_TIMEOUT + 10.0  # stopped, not run to its end
    assert started.status_code in (201, 409), started.json
    if started.status_code == 409:
        assert_error(started, 409)
    else:
        case = started.json
        assert case["status"] == "incident" and case["incident"]["element_id"] == "run_script", case
        assert isinstance(case["incident"]["message"], str) and len(case["incident"]["message"]) < 2_000
        listed = hostile_api.get("/api/cases", query_string={"status": "incident", "process": key}).json
        assert [c["id"] for c in listed["items"]] == [case["id"]]
    assert_still_serving(hostile_api)


def test_runtime_incident_leaks_no_file_content(hostile_api, secret_file):
    """A script that fails at run time has only its error in the incident, never file content."""
    _, token = secret_file
    key = unique_key()
    assert deploy(hostile_api, key, script_process("x = undefined_name", key=key)).status_code == 201
    started = hostile_api.post("/api/cases", json={"process": key, "cadre_id": "c1", "data": {}})
    assert started.status_code == 201 and started.json["status"] == "incident"
    assert "undefined_name" in started.json["incident"]["message"]
    assert_no_leak(started, token)


# What a case stores of its diagram: PostgreSQL refuses a value longer than its column (SQLite never checks).

@pytest.mark.parametrize("names", [{"element_id": "review_" + "x" * 94}, {"name": "长" * 201},
                                   {"process_name": "长" * 201}, {"end_id": "end_" + "y" * 41}],
                         ids=["element-id", "task-name", "process-name", "outcome"])
def test_ids_and_names_too_long_to_store_are_refused_at_deploy(hostile_api, names):
    """Each was deployed, then a 500 on PostgreSQL at the first step that stored it (or at deploy for the
    process's name): now a 422 naming the element, on both backends."""
    key = unique_key()
    error = assert_error(deploy(hostile_api, key, named_chain(**names).replace(KEY.encode(), key.encode())), 422)
    assert len(error["errors"]) == 1 and "characters; the limit is" in error["errors"][0]["message"], error
    assert_still_serving(hostile_api, key)


def test_an_assignee_from_case_data_too_long_to_store_is_an_incident(hostile_api):
    """An assignee expression giving 150 characters puts no such assignee in a row: the start is refused as an
    incident at the task, and no case is left behind (before: a 500 on PostgreSQL)."""
    key = unique_key()
    assert deploy(hostile_api, key, script_process("who = 'x' * 150", assignee="who", key=key)).status_code == 201
    error = assert_error(hostile_api.post("/api/cases", json={"process": key, "cadre_id": "c1", "data": {}}), 409)
    assert (error["code"], error["element_id"]) == ("incident", "review") and "150" in error["message"]
    assert hostile_api.get("/api/cases", query_string={"process": key}).json["total"] == 0


def test_deploy_still_validates_after_the_attacks(hostile_api):
    """After every attack of this module, a plain malformed upload still gets its 422 (the server is healthy)."""
    response = deploy(hostile_api, unique_key(), b"<not-closed")
    assert response.status_code in CLIENT_ERRORS
    assert_error(response, 422)
