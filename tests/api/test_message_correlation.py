"""Messages between cases correlated on values of any length (the database's column holds 500 characters)."""

from __future__ import annotations

from sqlalchemy import func, select

from service.db.models import OutboxItem
from service.usecases import check, delivery
from tests.conformance.bpmn import chain, definitions, end, message, message_ref, start, user

NAME = "long_done"
# The correlation value is the cadre id repeated: 600 characters for c1, past what the column holds.
CORRELATION = (
    f'<bpmn:correlationProperty id="ref" name="ref"><bpmn:correlationPropertyRetrievalExpression '
    f'messageRef="msg_{NAME}"><bpmn:messagePath>ref</bpmn:messagePath>'
    "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>"
)
CATCH = (
    f'<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition id="m1" messageRef="msg_{NAME}">'
    "<bpmn:extensionElements><spiffworkflow:messageVariable>news</spiffworkflow:messageVariable>"
    "<spiffworkflow:processVariableCorrelation><spiffworkflow:propertyId>ref</spiffworkflow:propertyId>"
    "<spiffworkflow:expression>cadre_id * 300</spiffworkflow:expression></spiffworkflow:processVariableCorrelation>"
    "</bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateCatchEvent>"
)


def deploy(api, key, body):
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=body, content_type="application/xml")
    assert response.status_code == 201, response.json
    assert api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200


def test_a_long_correlation_value_is_waited_for_and_delivered(api, services):
    top = message(NAME) + CORRELATION
    body = start() + CATCH + user("a") + end() + chain("start", "wait", "a", "end")
    deploy(api, "long_r", definitions("long_r", body, {"org_dept": ["a"]}, top))
    payload = '{"ref": cadre_id * 300}'
    throw = f'<bpmn:intermediateThrowEvent id="tell">{message_ref(NAME, payload=payload)}</bpmn:intermediateThrowEvent>'
    deploy(api, "long_t", definitions("long_t", start() + throw + end() + chain("start", "tell", "end"), top=top))
    api.create_cadre("c1")
    api.create_cadre("c2")
    mine, other = api.start("long_r", "c1", as_="org_dept"), api.start("long_r", "c2", as_="org_dept")
    api.start("long_t", "c1", as_="org_dept")
    delivery.deliver_due(services)
    assert api.case(mine["id"])["data"]["news"] == {"ref": "c1" * 300}
    assert api.open_elements(mine["id"]) == ["a"] and api.open_elements(other["id"]) == []


LONELY = '{"ref": cadre_id}'


def test_a_message_no_case_takes_is_given_up_in_the_senders_history(api, services):
    """A message no case waits for is tried MAX_ATTEMPTS times, then given up: the sending case's history says so
    (an inspector reading the sender's step would otherwise believe it arrived), and the outbox is empty."""
    from tests.service.test_call_done_delivery import deliver_now

    top = message(NAME) + CORRELATION
    throw = (f'<bpmn:intermediateThrowEvent id="tell">{message_ref(NAME, payload=LONELY)}'
             "</bpmn:intermediateThrowEvent>")
    deploy(api, "lonely_t", definitions("lonely_t", start() + throw + end() + chain("start", "tell", "end"), top=top))
    api.create_cadre("c1")
    sender = api.start("lonely_t", "c1", as_="org_dept")
    for _ in range(delivery.MAX_ATTEMPTS - 2):  # its first attempt was made as the sender's step committed
        deliver_now(services)
    assert not [e for e in api.history(sender["id"]) if e["action"] == "delivery_given_up"]
    deliver_now(services)
    given_up = [e for e in api.history(sender["id"]) if e["action"] == "delivery_given_up"]
    assert [(e["actor"], e["detail"]["kind"], e["detail"]["name"]) for e in given_up] == [("system", "message", NAME)]
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0
    assert check.check_cases(services, grace_seconds=3600)[1] == []  # the entry is a chained one like the others


def test_a_message_name_longer_than_the_outbox_holds_is_refused_at_deploy(api):
    name = "m" * 201
    throw = f'<bpmn:intermediateThrowEvent id="tell">{message_ref(name)}</bpmn:intermediateThrowEvent>'
    refused = api.post("/api/processes/long_name/versions", as_="designer", content_type="application/xml",
                       data=definitions("long_name", start() + throw + end() + chain("start", "tell", "end"),
                                        top=message(name)))
    assert refused.status_code == 422, refused.json
    assert any("消息或信号名称过长" in problem["message"] for problem in refused.json["error"]["errors"])
