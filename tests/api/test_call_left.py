"""A case that leaves a call activity while its called child case runs takes the child (and the child's own
called cases) with it: the child ends as cancelled, its open tasks closed, both histories saying why, in the
caller's own transaction. A child's end that reaches a caller no longer waiting for it is dropped with a note."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service.db.models import Case, OutboxItem, utcnow
from service.usecases import check, delivery
from tests.api.support import fire_after_deadline
from tests.api.test_audit_first import POST, appoint_at_committee, the_audit
from tests.conformance.bpmn import (
    chain,
    definitions,
    end,
    flow,
    message,
    message_ref,
    start,
    terminate,
    timer,
    user,
)
from tests.engine.test_returns import FLAG
from tests.web.test_web_shell import login

CALL = '<bpmn:callActivity id="call" calledElement="called"/>'
SPLIT, JOIN = '<bpmn:parallelGateway id="split"/>', '<bpmn:parallelGateway id="join"/>'
CALLED = start() + user("c") + terminate("approved") + chain("start", "c", "end_approved")
# A called process that calls one of its own: the tree a caller's move must end whole.
MIDDLE = (start() + '<bpmn:callActivity id="inner" calledElement="called"/>' + user("m") + end()
          + chain("start", "inner", "m", "end"))


def deploy(api, key: str, body: str, lanes: list[str], top: str = "") -> None:
    response = api.post(f"/api/processes/{key}/versions", as_="designer",
                        data=definitions(key, body, {"org_dept": lanes} if lanes else None, top),
                        content_type="application/xml")
    assert response.status_code == 201, response.get_json()


def called_child(api, case: dict) -> dict:
    (child_id,) = case["child_case_ids"]
    return api.case(child_id)


def assert_withdrawn(api, child_id: int, caller_id: int) -> None:
    """The child is cancelled with no open task, its history naming the caller and why, the caller's naming it."""
    child = api.case(child_id)
    assert (child["status"], child["open_tasks"]) == ("cancelled", []), child
    assert api.inbox("org_dept", case_id=child_id) == []
    ended = [e for e in api.history(child_id) if e["action"] == "cancel"]
    assert len(ended) == 1 and ended[0]["actor"] == "system", ended
    assert ended[0]["detail"]["parent_case_id"] == caller_id and "上级案件" in ended[0]["detail"]["reason"]
    noted = [e for e in api.history(caller_id) if e["action"] == "child_cancelled"]
    assert [e["detail"]["child_case_id"] for e in noted] == [child_id], noted
    assert "撤销" in noted[0]["detail"]["reason"] and "withdrawn" in noted[0]["detail"]["reason"]
    assert check.check_cases(api.client.application.extensions["cadreflow"])[1] == []


def deliver_now(services) -> None:
    """The worker's delivery pass, as if every item's wait before its next attempt had passed."""
    with services.db.unit_of_work() as session:
        session.execute(update(OutboxItem).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    delivery.deliver_due(services)


def outbox(services) -> list[OutboxItem]:
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(OutboxItem)))


@pytest.fixture
def called(api, cadre):
    deploy(api, "called", CALLED, ["c"])
    return api


def test_a_return_across_a_running_call_withdraws_the_child(called):
    """a → (call ‖ b); b is returned to a while the child runs: the child is withdrawn, and a completed again
    opens a new child the caller then waits for (the old child's end, had it come, would have gone nowhere)."""
    api = called
    deploy(api, "caller", start() + user("a") + SPLIT + CALL + user("b", extensions=FLAG.format(value="true"))
           + JOIN + end() + chain("start", "a", "split") + flow("split", "call") + flow("split", "b")
           + flow("call", "join") + flow("b", "join") + chain("join", "end"), ["a", "b"])
    caller = api.start("caller")
    case = api.complete(caller["id"], "a", ok=True)
    child = called_child(api, case)
    returned = api.post(f"/api/tasks/{api.open_task(caller['id'], 'b')['id']}/return", as_="org_dept",
                        json={"reason": "重新办理"})
    assert returned.status_code == 200, returned.json
    assert_withdrawn(api, child["id"], caller["id"])
    again = api.complete(caller["id"], "a", ok=True)
    fresh = [c for c in again["child_case_ids"] if c != child["id"]]
    assert len(fresh) == 1 and api.case(fresh[0])["status"] == "open"
    api.complete(fresh[0], "c", ok=True)
    api.complete(caller["id"], "b", ok=True)
    after = api.case(caller["id"])
    assert (after["status"], after["data"]["call_outcome"]) == ("completed", "approved")


def test_cancelling_the_caller_withdraws_its_called_tree(called):
    """The caller waits on a child that waits on a grandchild; the caller is cancelled: both below it end."""
    api = called
    deploy(api, "middle", MIDDLE, ["m"])
    deploy(api, "caller", start() + '<bpmn:callActivity id="call" calledElement="middle"/>' + user("a") + end()
           + chain("start", "call", "a", "end"), ["a"])
    caller = api.start("caller")
    middle = called_child(api, caller)
    grandchild = called_child(api, middle)
    assert grandchild["status"] == "open" and grandchild["open_tasks"]
    response = api.post(f"/api/cases/{caller['id']}/cancel", as_="admin", json={"reason": "不再办理"})
    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled"
    assert_withdrawn(api, middle["id"], caller["id"])
    assert_withdrawn(api, grandchild["id"], middle["id"])
    services = api.client.application.extensions["cadreflow"]
    assert outbox(services) == []  # a withdrawn child sends its caller no end
    login(api.client, "admin")  # the caller's page names the withdrawn child, linked
    page = api.client.get(f"/cases/{caller['id']}").get_data(as_text=True)
    entry = page[page.index("撤销被调用的关联案件"):]
    assert f'href="/cases/{middle["id"]}"' in entry[:entry.index("</li>")]


def test_a_vetting_cancelled_while_it_waits_for_the_audit_first_takes_the_audit_with_it(api, cadre):
    """先审计，后离任: the vetting waits at await_departure_audit; cancelled, its audit (and its tasks in the audit
    office's inbox) end with it, and the post stays."""
    vetting = appoint_at_committee(api)
    audit = the_audit(api, vetting["id"])
    assert api.inbox("audit_head", case_id=audit["id"])
    response = api.post(f"/api/cases/{vetting['id']}/cancel", as_="admin", json={"reason": "拟任人选调整"})
    assert response.status_code == 200, response.json
    assert_withdrawn(api, audit["id"], vetting["id"])
    assert api.inbox("audit_head", case_id=audit["id"]) == []
    assert api.cadre()["post"] == POST


def test_an_interrupting_timer_on_the_call_withdraws_the_child(fast_api):
    """The call's interrupting deadline fires while the child runs: the caller takes the other path, the
    child is withdrawn."""
    api = fast_api
    api.create_cadre("c1")
    deploy(api, "called", CALLED, ["c"])
    deploy(api, "caller", start() + CALL + '<bpmn:boundaryEvent id="late" attachedToRef="call" cancelActivity="true">'
           + timer("public_notice") + "</bpmn:boundaryEvent>" + user("a") + user("x") + end("e1") + end("e2")
           + chain("start", "call", "a", "e1") + chain("late", "x", "e2"), ["a", "x"])
    caller = api.start("caller")
    child = called_child(api, caller)
    fire_after_deadline(api.client.application.extensions["cadreflow"])
    assert api.open_elements(caller["id"]) == ["x"]
    assert_withdrawn(api, child["id"], caller["id"])


def test_an_interrupting_message_on_the_call_withdraws_the_child(called):
    api = called
    deploy(api, "caller", start() + CALL + '<bpmn:boundaryEvent id="stop" attachedToRef="call">'
           + message_ref("caller_stop") + "</bpmn:boundaryEvent>" + user("a") + user("x") + end("e1") + end("e2")
           + chain("start", "call", "a", "e1") + chain("stop", "x", "e2"), ["a", "x"], message("caller_stop"))
    caller = api.start("caller")
    child = called_child(api, caller)
    sent = api.post("/api/messages", as_="admin", json={"name": "caller_stop", "case_id": caller["id"], "data": {}})
    assert sent.status_code == 202, sent.json
    assert api.open_elements(caller["id"]) == ["x"]
    assert_withdrawn(api, child["id"], caller["id"])


def test_an_interrupting_event_subprocess_withdraws_the_child(called):
    """An interrupting message event subprocess cancels the main flow, the running call with it."""
    api = called
    esp = ('<bpmn:subProcess id="esp" triggeredByEvent="true"><bpmn:startEvent id="es_start" isInterrupting="true">'
           + message_ref("caller_recall") + "</bpmn:startEvent>" + user("handle") + end("es_end")
           + chain("es_start", "handle", "es_end") + "</bpmn:subProcess>")
    deploy(api, "caller", start() + CALL + user("a") + end() + chain("start", "call", "a", "end") + esp,
           ["a", "handle"], message("caller_recall"))
    caller = api.start("caller")
    child = called_child(api, caller)
    sent = api.post("/api/messages", as_="admin", json={"name": "caller_recall", "case_id": caller["id"], "data": {}})
    assert sent.status_code == 202, sent.json
    assert api.open_elements(caller["id"]) == ["handle"]
    assert_withdrawn(api, child["id"], caller["id"])

def test_a_terminate_end_on_another_branch_withdraws_the_child(called):
    """call ‖ b, b ends at a terminate end: the caller completes, and the child it no longer waits for ends."""
    api = called
    deploy(api, "caller", start() + SPLIT + CALL + user("b") + end() + terminate("stopped")
           + flow("start", "split") + flow("split", "call") + flow("split", "b") + flow("call", "end")
           + flow("b", "end_stopped"), ["b"])
    caller = api.start("caller")
    child = called_child(api, caller)
    done = api.complete(caller["id"], "b", ok=True)
    assert (done["status"], done["outcome"]) == ("completed", "stopped")
    assert_withdrawn(api, child["id"], caller["id"])


def test_a_call_left_in_the_step_that_reached_it_opens_no_child(called):
    """call ‖ terminate in one step: the call is left before its child would open, so none opens."""
    api = called
    deploy(api, "caller", start() + SPLIT + CALL + end() + terminate("stopped") + flow("start", "split")
           + flow("split", "call") + flow("split", "end_stopped") + flow("call", "end"), [])
    caller = api.start("caller")
    assert (caller["status"], caller["child_case_ids"]) == ("completed", []), caller
    services = api.client.application.extensions["cadreflow"]
    with services.db.unit_of_work(write=False) as session:
        assert list(session.scalars(select(Case.id).where(Case.process_key == "called"))) == []


def test_a_migration_that_would_drop_a_running_call_is_refused_and_one_keeping_it_goes_on(called):
    api = called
    deploy(api, "caller", start() + CALL + user("a") + end() + chain("start", "call", "a", "end"), ["a"])
    caller = api.start("caller")
    child = called_child(api, caller)
    deploy(api, "caller", start() + user("a") + end() + chain("start", "a", "end"), ["a"])
    refused = api.post(f"/api/cases/{caller['id']}/migrate", as_="admin", json={"to_version": 2})
    assert refused.status_code == 409, refused.json
    assert api.case(child["id"])["status"] == "open"
    deploy(api, "caller", start() + CALL + user("a") + user("z") + end()
           + chain("start", "call", "a", "z", "end"), ["a", "z"])
    moved = api.post(f"/api/cases/{caller['id']}/migrate", as_="admin", json={"to_version": 3})
    assert moved.status_code == 200, moved.json
    assert api.case(child["id"])["status"] == "open"
    api.complete(child["id"], "c", ok=True)
    assert api.open_elements(caller["id"]) == ["a"]


@pytest.mark.parametrize("caller_status", ["open", "cancelled"])
def test_a_childs_end_for_a_caller_no_longer_waiting_is_dropped_with_a_note(called, caller_status):
    """A child's end that reaches its caller after the caller left the call (a child ended just as its caller
    moved, or one orphaned before this was fixed) is never applied: dropped at once, noted in the caller's
    history, the caller as it was."""
    api = called
    deploy(api, "caller", start() + CALL + user("a") + end() + chain("start", "call", "a", "end"), ["a"])
    caller = api.start("caller")
    child = called_child(api, caller)
    services = api.client.application.extensions["cadreflow"]
    if caller_status == "cancelled":
        assert api.post(f"/api/cases/{caller['id']}/cancel", json={"reason": "不再办理"}).status_code == 200
    before = api.case(caller["id"])
    with services.db.unit_of_work() as session:  # the end of a call the caller no longer waits at
        session.add(OutboxItem(kind=delivery.CALL_DONE, source_case_id=child["id"], target_case_id=caller["id"],
                               payload={"task_id": "00000000-0000-4000-8000-000000000000", "outcome": "approved"}))
    deliver_now(services)
    assert outbox(services) == []
    after = api.case(caller["id"])
    assert (after["status"], after["open_tasks"], after["data"]) == (before["status"], before["open_tasks"],
                                                                     before["data"])
    noted = [e for e in api.history(caller["id"]) if e["action"] == "call_result_dropped"]
    assert [(e["detail"]["child_case_id"], e["detail"]["outcome"]) for e in noted] == [(child["id"], "approved")]
    assert "不再等待" in noted[0]["detail"]["reason"]
