"""Names a designer writes that the parsers once put inside an XPath expression, over the real deploy route.

An XPath expression built from a name lets the name close its string literal and add an expression of its own:
nested `count(//*[...])` predicates walk the whole document once per node per level, so a 4 KB upload held the
web process that parses it at deploy (and every executor loading the version) for minutes, then hours. Deploy
must answer at once: the hostile name either runs as a plain name or is refused, naming its element.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape, quoteattr

import pytest

from tests.api.support import key_maker, shared_api
from tests.engine.bpmn_builder import decision_table, script_process

PADDING = 100  # elements each nested predicate walks: enough for the attack to take half a minute and more


@pytest.fixture(scope="module")
def hostile_api(template, tmp_path_factory):
    yield from shared_api(template, tmp_path_factory, "hostile-xpath")


unique_key = key_maker("hostile_xpath")


def nested_counts(levels: int) -> str:
    """An XPath expression that walks the document levels deep: N ** levels node visits."""
    inner = "0"
    for _ in range(levels):
        inner = f"count(//*[{inner} < 0])"
    return inner


def deploy(api, key, bpmn, dmns=None):
    files = {"file0": (io.BytesIO(bpmn), f"{key}.bpmn")}
    files |= {f"file{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate((dmns or {}).items(), 1)}
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=files, content_type="multipart/form-data")


def test_a_decision_id_is_never_read_as_xpath(hostile_api):
    """The decision id closes the attribute literal of the lookup of its table and names a decoy element
    instead: read as XPath, the decoy's table (a sum over a UNIQUE table, refused) would stand for the real one.
    The same literal could as well add nested counts over the document, which held a 4 KB deploy for minutes."""
    decision = 'pick"] | //*[@id="decoy'
    dmn = decision_table("PLACEHOLDER", "1", "-", '"chosen"').decode()
    dmn = dmn.replace('id="PLACEHOLDER"', f"id={quoteattr(decision)}")
    decoy = ('<x:decoy xmlns:x="urn:decoy" id="decoy"><decisionTable id="decoy_table" hitPolicy="UNIQUE" '
             'aggregation="SUM"/></x:decoy>')  # in the DMN namespace, the file's default
    dmn = dmn.replace("</definitions>", decoy + "</definitions>")
    key = unique_key()
    bpmn = script_process("x = 1", key=key, decision="PLACEHOLDER").decode().replace("PLACEHOLDER", escape(decision))
    response = deploy(hostile_api, key, bpmn.encode(), {"t.dmn": dmn.encode()})
    assert response.status_code == 201, response.json
    assert hostile_api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200
    case = hostile_api.post("/api/cases", as_="org_dept", json={"process": key, "cadre_id": "c1", "data": {}})
    assert case.status_code == 201, case.json
    assert hostile_api.case(case.json["id"])["data"]["result"] == "chosen"


MESSAGE = "hostile_news"
CORRELATION = (f'<bpmn:message id="msg" name="{MESSAGE}"/><bpmn:correlationProperty id="ref" name="ref">'
               '<bpmn:correlationPropertyRetrievalExpression messageRef="msg"><bpmn:messagePath>ref</bpmn:messagePath>'
               "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>")


def catching_process(key: str, property_id: str) -> bytes:
    """start → a message catch `wait` correlated on `property_id` → end; padded with data objects."""
    catch = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition id="wait_def" messageRef="msg">'
             "<bpmn:extensionElements><spiffworkflow:messageVariable>news</spiffworkflow:messageVariable>"
             f"<spiffworkflow:processVariableCorrelation><spiffworkflow:propertyId>{escape(property_id)}"
             "</spiffworkflow:propertyId><spiffworkflow:expression>cadre_id</spiffworkflow:expression>"
             "</spiffworkflow:processVariableCorrelation></bpmn:extensionElements></bpmn:messageEventDefinition>"
             "</bpmn:intermediateCatchEvent>")
    padding = "".join(f'<bpmn:dataObject id="pad_{i}"/>' for i in range(PADDING))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
            'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
            f'id="defs_{key}" targetNamespace="http://cadreflow.example/test">{CORRELATION}'
            f'<bpmn:process id="{key}" name="关联" isExecutable="true"><bpmn:startEvent id="start"/>{catch}'
            '<bpmn:endEvent id="end_done"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>'
            f'<bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end_done"/>{padding}</bpmn:process>'
            "</bpmn:definitions>").encode()


def test_a_correlation_property_id_that_would_close_its_xpath_literal_is_refused(hostile_api):
    """SpiffWorkflow finds a processVariableCorrelation's keys with an XPath holding its propertyId in quotes."""
    key = unique_key()
    response = deploy(hostile_api, key, catching_process(key, f"ref'] | //*[{nested_counts(3)}] | /x[text()='"))
    assert response.status_code == 422, response.json
    problems = response.json["error"]["errors"]
    assert [problem["element_id"] for problem in problems] == ["wait"], problems
    assert "关联属性" in problems[0]["message"], problems


def test_a_plain_correlation_property_id_still_deploys(hostile_api):
    key = unique_key()
    response = deploy(hostile_api, key, catching_process(key, "ref"))
    assert response.status_code == 201, response.json
