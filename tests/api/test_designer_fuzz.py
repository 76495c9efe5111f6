"""ISSUE 3 — mutated shipped BPMN/DMN files posted as new versions never get a 500, always the error shape."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import PROJECT_ROOT
from tests.api.support import app_from_template, assert_error, make_api
from workflows.engine import decision_ids, referenced_decisions

BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"
ALLOWED = {200, 201, 400, 413, 422}
DMN_FILES = {p.name: p.read_bytes() for p in sorted(BPMN_DIR.glob("*.dmn"))}


def _shipped():
    found = {}
    for path in sorted(BPMN_DIR.glob("*.bpmn")):
        bpmn = path.read_bytes()
        wanted = referenced_decisions(bpmn)
        found[path.stem] = (bpmn, {n: c for n, c in DMN_FILES.items() if decision_ids(c) & wanted})
    return found


SHIPPED = _shipped()
ATTRIBUTE = re.compile(rb'\s[\w:]+="[^"]*"')
ID_VALUE = re.compile(rb'\b(?:id|sourceRef|targetRef|bpmnElement|attachedToRef|default)="([^"]*)"')
CODE_TEXT = re.compile(rb"<bpmn:(?:script|conditionExpression|timeDuration)[^>]*>(.*?)</bpmn:", re.S)
FORM_TEXT = re.compile(rb"<spiffworkflow:formSchema>(.*?)</spiffworkflow:formSchema>", re.S)
DMN_TEXT = re.compile(rb"<text>(.*?)</text>", re.S)
NOISE = st.one_of(
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"<", b"&", b"]]>", b"&xxe;", b"__import__('os')", b"open('/etc/passwd')", b"10**10**10",
                     b"while True: pass", b'"a" * 10**9', b"\xff\xfe", b"\x00", b"{", b"null", b"1/0",
                     b"undefined_name", b"<!DOCTYPE x>", "不称职".encode()]),
)


def _replace_group(data, pattern, draw, group, steps):
    matches = list(pattern.finditer(data))
    if not matches:
        return data
    match = matches[draw(st.integers(0, len(matches) - 1))]
    start, end = match.span(group)
    noise = draw(NOISE)
    steps.append(f"[{start}:{end}]={noise[:40]!r}")
    return data[:start] + noise + data[end:]


def _slice(data, draw):
    i = draw(st.integers(0, len(data)))
    j = draw(st.integers(i, min(len(data), i + 2_000)))
    return i, j


def _delete(data, draw, steps):
    i, j = _slice(data, draw)
    steps.append(f"[{i}:{j}]")
    return data[:i] + data[j:]


def _duplicate(data, draw, steps):
    i, j = _slice(data, draw)
    steps.append(f"[{i}:{j}]")
    return data[:j] + data[i:j] + data[j:]


def _swap(data, draw, steps):
    (i, j), (k, m) = _slice(data, draw), _slice(data, draw)
    steps.append(f"[{i}:{j}]<->[{k}:{m}]")
    return data[:i] + data[k:m] + data[j:k] + data[i:j] + data[m:] if j <= k else data


def _flip(data, draw, steps):
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8)) if out else 0):
        position, value = draw(st.integers(0, len(out) - 1)), draw(st.integers(0, 255))
        steps.append(f"[{position}]={value}")
        out[position] = value
    return bytes(out)


def _insert(data, draw, steps):
    i, noise = draw(st.integers(0, len(data))), draw(NOISE)
    steps.append(f"[{i}]+={noise[:40]!r}")
    return data[:i] + noise + data[i:]


def _remove_attribute(data, draw, steps):
    matches = list(ATTRIBUTE.finditer(data))
    if not matches:
        return data
    start, end = matches[draw(st.integers(0, len(matches) - 1))].span()
    steps.append(repr(data[start:end][:60]))
    return data[:start] + data[end:]


def _truncate(data, draw, steps):
    cut = draw(st.integers(0, len(data)))
    steps.append(f"[:{cut}]")
    return data[:cut]


def _replacing(pattern):
    return lambda data, draw, steps: _replace_group(data, pattern, draw, 1, steps)


MUTATIONS = {"delete": _delete, "duplicate": _duplicate, "swap": _swap, "flip": _flip, "insert": _insert,
             "attribute": _remove_attribute, "truncate": _truncate, "id": _replacing(ID_VALUE),
             "code": _replacing(CODE_TEXT), "form": _replacing(FORM_TEXT), "dmn-text": _replacing(DMN_TEXT)}


def mutate(data, draw, steps):
    """Apply one random byte-level or XML-level mutation; describe it in `steps`."""
    kind = draw(st.sampled_from(sorted(MUTATIONS)))
    steps.append(kind)
    return MUTATIONS[kind](data, draw, steps)


class Upload:
    """One mutated upload; its repr is the recipe (the bytes would make Hypothesis reports huge)."""

    def __init__(self, key, bpmn, dmns, multipart, steps):
        self.key, self.bpmn, self.dmns, self.multipart, self.steps = key, bpmn, dmns, multipart, steps

    def __repr__(self):
        return f"Upload({self.key!r}, multipart={self.multipart}, steps={self.steps!r})"


@st.composite
def uploads(draw):
    """An Upload of a shipped process with 1–3 mutations on its BPMN or one of its DMN files."""
    key = draw(st.sampled_from(sorted(SHIPPED)))
    bpmn, dmns = SHIPPED[key]
    dmns, steps = dict(dmns), []
    for _ in range(draw(st.integers(1, 3))):
        if dmns and draw(st.integers(0, 4)) == 0:
            name = draw(st.sampled_from(sorted(dmns)))
            steps.append(name)
            dmns[name] = mutate(dmns[name], draw, steps)
        else:
            steps.append("bpmn")
            bpmn = mutate(bpmn, draw, steps)
    multipart = bool(dmns) or draw(st.booleans())
    return Upload(key, bpmn, dmns, multipart, steps)


@pytest.fixture(scope="module")
def fuzz_api(template, tmp_path_factory):
    app = app_from_template(template, tmp_path_factory.mktemp("fuzz"), SCRIPT_TIMEOUT_SECONDS=0.3)
    yield make_api(app, template)
    app.extensions["cadreflow"].db.dispose()


def post(api, key, bpmn, dmns, multipart=True):
    url = f"/api/processes/{key}/versions"
    if not multipart:
        return api.post(url, as_="designer", data=bpmn, content_type="application/xml")
    data = {"bpmn": (io.BytesIO(bpmn), f"{key}.bpmn")}
    data.update({f"dmn{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate(dmns.items())})
    return api.post(url, as_="designer", data=data, content_type="multipart/form-data")


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(upload=uploads())
def test_mutated_shipped_files_never_get_a_500(fuzz_api, upload):
    """Any mutation of a shipped BPMN (or its DMN) → 201/200/400/413/422 with JSON; errors have the error shape."""
    response = post(fuzz_api, upload.key, upload.bpmn, upload.dmns, upload.multipart)
    check_answer(response, upload.key)


def check_answer(response, key):
    assert response.status_code in ALLOWED, (response.status_code, response.get_data()[:500])
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data()[:300]
    if response.status_code >= 400:
        error = assert_error(response, response.status_code)
        if response.status_code == 422:
            problems = error.get("errors", [])
            assert all(isinstance(p.get("message"), str) and p["message"] for p in problems), problems
            assert all(p.get("line") is None or isinstance(p["line"], int) for p in problems), problems
    else:
        assert body["key"] == key and isinstance(body["version"], int)


@pytest.mark.parametrize(("key", "dmn"), [("annual_assessment", "assessment_grade.dmn"),
                                          ("accountability", "sanction_ladder.dmn")])
def test_dmn_without_its_namespace_is_refused(fuzz_api, key, dmn):
    """A DMN file that lost its DMN namespace → 422 with the error shape, not a 500."""
    bpmn, dmns = SHIPPED[key]
    broken = dmns[dmn].replace(b' xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"', b"", 1)
    assert broken != dmns[dmn]
    response = post(fuzz_api, key, bpmn, {**dmns, dmn: broken})
    check_answer(response, key)
    assert_error(response, 422)


def _empty_timer():
    bpmn = SHIPPED["admonishment"][0]
    return re.sub(rb"<bpmn:timeDuration[^>]*>[^<]*</bpmn:timeDuration>", b"<bpmn:timeDuration/>", bpmn, count=1)


def _null_rule():
    return SHIPPED["rotation_review"][0].replace(b'"expr": "not (decision', b'"expr": null, "was": "not (decision', 1)


@pytest.mark.parametrize(("key", "make"), [("admonishment", _empty_timer), ("rotation_review", _null_rule)],
                         ids=["empty-timer", "null-form-rule"])
def test_empty_code_is_refused_not_500(fuzz_api, key, make):
    """An emptied timer expression or a form rule whose expr is null → 422 naming the element, not a 500."""
    bpmn = make()
    assert bpmn != SHIPPED[key][0]
    response = post(fuzz_api, key, bpmn, {}, multipart=False)
    check_answer(response, key)
    problems = assert_error(response, 422)["errors"]
    assert all(p.get("element_id") for p in problems), problems


def test_server_serves_after_the_fuzzing(fuzz_api):
    """After the mutated uploads, the process list and a shipped process still read fine."""
    assert fuzz_api.get("/api/processes").status_code == 200
    assert fuzz_api.get("/api/processes/accountability/bpmn", query_string={"version": 1}).data == \
        SHIPPED["accountability"][0]
