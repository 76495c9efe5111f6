"""Every BPMN construct deploy accepts, each with a small process that must run to the right end, and
every construct deploy refuses, each with the element it must name and the alternative it must offer.

This registry is the source of bpmn/CONVENTIONS.md's table (test_table.py keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from tests.conformance.bpmn import (
    LANE,
    VOTE_FORM,
    chain,
    definitions,
    end,
    error,
    error_ref,
    escalation,
    escalation_ref,
    flow,
    form,
    message,
    message_ref,
    script,
    signal,
    signal_ref,
    start,
    terminate,
    timer,
    user,
)
from tests.conformance.driver import Driver

Drive = Callable[[Driver, str], None]


@dataclass(frozen=True)
class Construct:
    name: str
    category: str
    note: str  # how it behaves (runs) or what to draw instead (refused)
    drive: Drive | None = None  # runs: deploy, drive and assert
    refused: Callable[[str], bytes] | None = None  # refused: the document
    element: str = ""  # refused: the element the refusal must name
    words: tuple[str, ...] = ()  # refused: words the message must contain


CONSTRUCTS: dict[str, Construct] = {}


def runs(name: str, category: str, note: str) -> Callable[[Drive], Drive]:
    def register(drive: Drive) -> Drive:
        CONSTRUCTS[name] = Construct(name, category, note, drive=drive)
        return drive

    return register


def refuses(name: str, category: str, note: str, element: str, *words: str) -> Callable[[Callable], Callable]:
    def register(document: Callable[[str], bytes]) -> Callable[[str], bytes]:
        CONSTRUCTS[name] = Construct(name, category, note, refused=document, element=element, words=words)
        return document

    return register


def lane(*ids: str) -> dict[str, list[str]]:
    return {LANE: list(ids)}


def finished(d: Driver, case_id: int, outcome: str | None) -> None:
    case = d.case(case_id)
    assert (case["status"], case["outcome"]) == ("completed", outcome), case


# Tasks ----------------------------------------------------------------------------------------------


@runs("user task", "tasks", "a person's task in the lane's role, with its JSON-Schema form")
def _user_task(d: Driver, key: str) -> None:
    d.deployed(
        key, definitions(key, start() + user("a") + terminate("done") + chain("start", "a", "end_done"), lane("a"))
    )
    case = d.start(key)
    assert d.open(case["id"]) == ["a"] and case["open_tasks"][0]["role"] == LANE
    d.complete(case["id"], "a")
    finished(d, case["id"], "done")


@runs("manual task", "tasks", "a person's task without a form: done with one click")
def _manual_task(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key, start() + '<bpmn:manualTask id="m" name="线下核对"/>' + end() + chain("start", "m", "end"), lane("m")
        ),
    )
    case = d.start(key)
    assert d.open(case["id"]) == ["m"]
    d.api.complete(case["id"], "m", as_="admin")
    finished(d, case["id"], None)


@runs("task (no type)", "tasks", "passes through at once")
def _none_task(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key, start() + '<bpmn:task id="t"/>' + user("a") + end() + chain("start", "t", "a", "end"), lane("a")
        ),
    )
    assert d.open(d.start(key)["id"]) == ["a"]


@runs("script task", "tasks", "Python in the sandbox (no imports, no dunders, no try/except)")
def _script_task(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key, start() + script("s", "total = n * 2") + user("a") + end() + chain("start", "s", "a", "end"), lane("a")
        ),
    )
    assert d.start(key, n=21)["data"]["total"] == 42


@runs("service task", "tasks", "calls a glue operation by name (unknown names are refused)")
def _service_task(d: Driver, key: str) -> None:
    service = (
        '<bpmn:serviceTask id="svc"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator '
        'id="cadre_facts" resultVariable="facts"><spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator>'
        "</bpmn:extensionElements></bpmn:serviceTask>"
    )
    d.deployed(
        key, definitions(key, start() + service + user("a") + end() + chain("start", "svc", "a", "end"), lane("a"))
    )
    assert d.start(key)["data"]["facts"]["open_accountability"] is False


@runs("business rule task", "tasks", "a DMN decision table (see the DMN rows)")
def _business_rule(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key, start() + decide("pick_unique") + user("a") + end() + chain("start", "decide", "a", "end"), lane("a")
        ),
        {"t.dmn": table("pick_unique", "UNIQUE", [("< 5", '"low"'), (">= 5", '"high"')])},
    )
    assert d.start(key, n=7)["data"]["result"] == "high"


@runs("send task / receive task", "tasks", "a message to another case / a wait for one (see messages)")
def _send_receive(d: Driver, key: str) -> None:
    send = f'<bpmn:sendTask id="snd" messageRef="msg_{key}_ping"/>'
    receive = f'<bpmn:receiveTask id="rcv" messageRef="msg_{key}_ping"/>'
    top = message(f"{key}_ping")
    d.deployed(f"{key}_r", definitions(f"{key}_r", start() + receive + end() + chain("start", "rcv", "end"), top=top))
    d.deployed(key, definitions(key, start() + send + end() + chain("start", "snd", "end"), top=top))
    waiting = d.start(f"{key}_r")
    d.start(key)  # the same cadre: an uncorrelated message reaches its cases
    finished(d, waiting["id"], None)


@runs(
    "call activity",
    "tasks",
    "opens the called (deployed) process as a linked child case; the caller waits and goes on with <id>_outcome",
)
def _call_activity(d: Driver, key: str) -> None:
    d.deployed(
        f"{key}_child",
        definitions(
            f"{key}_child", start() + user("c") + terminate("approved") + chain("start", "c", "end_approved"), lane("c")
        ),
    )
    d.deployed(
        key,
        definitions(
            key,
            start()
            + f'<bpmn:callActivity id="call" calledElement="{key}_child"/>'
            + user("a")
            + end()
            + chain("start", "call", "a", "end"),
            lane("a"),
        ),
    )
    parent = d.start(key)
    assert d.open(parent["id"]) == [] and len(parent["child_case_ids"]) == 1
    child = parent["child_case_ids"][0]
    assert d.case(child)["parent_case_id"] == parent["id"]
    d.complete(child, "c")
    assert d.case(parent["id"])["data"]["call_outcome"] == "approved" and d.open(parent["id"]) == ["a"]


def _called(d: Driver, key: str, ending: str, top: str) -> str:
    """Deploy a called process whose one task ends it at `ending` (an error or escalation end event `end_x`)."""
    child = f"{key}_child"
    d.deployed(child, definitions(child, start() + user("c") + ending + chain("start", "c", "end_x"), lane("c"), top))
    return child


def _caller(d: Driver, key: str, child: str, definition: str, top: str, interrupting: bool = True) -> int:
    """Deploy and start a caller: call -> a -> end, and the boundary `b` on the call -> x -> e2; the caller's id."""
    cancel = "" if interrupting else ' cancelActivity="false"'
    d.deployed(
        key,
        definitions(
            key,
            start()
            + f'<bpmn:callActivity id="call" calledElement="{child}"/>'
            + f'<bpmn:boundaryEvent id="b" attachedToRef="call"{cancel}>{definition}</bpmn:boundaryEvent>'
            + user("a") + user("x") + end() + end("e2") + chain("start", "call", "a", "end") + chain("b", "x", "e2"),
            lane("a", "x"),
            top,
        ),
    )
    return int(d.start(key)["id"])


def _child_ends(d: Driver, parent: int) -> None:
    """Complete the called case's task: the called case completes at its own end event."""
    child = d.case(parent)["child_case_ids"][0]
    d.complete(child, "c")
    assert (d.case(child)["status"], d.case(child)["outcome"]) == ("completed", "x")


def _noted(d: Driver, case_id: int, **detail: str) -> bool:
    """Whether the case's history has an entry with these details (the call's end)."""
    return any(all((entry.get("detail") or {}).get(k) == v for k, v in detail.items())
               for entry in d.api.history(case_id))


@runs(
    "error boundary on a call activity",
    "tasks",
    "the called case's error end (its errorCode, or any when the boundary names none) leaves the call activity by "
    "the boundary; <id>_error and <id>_outcome hold the code and the called case's outcome",
)
def _call_error(d: Driver, key: str) -> None:
    child = _called(d, key, end("end_x", error_ref("E1")), error("E1"))
    for turn, definition in enumerate((error_ref("E1"), '<bpmn:errorEventDefinition id="ed_any"/>')):
        parent = _caller(d, f"{key}_{turn}", child, definition, error("E1"))
        _child_ends(d, parent)
        case = d.case(parent)
        assert d.open(parent) == ["x"] and case["status"] == "open", case
        assert (case["data"]["call_error"], case["data"]["call_outcome"]) == ("E1", "x"), case["data"]
        assert _noted(d, parent, error="E1", outcome="x"), d.api.history(parent)
        d.complete(parent, "x")
        finished(d, parent, None)


@runs(
    "error end in a called case no boundary catches",
    "tasks",
    "as an uncaught error end inside one case: the caller goes on down its normal path, <id>_error holds the code",
)
def _call_error_uncaught(d: Driver, key: str) -> None:
    child = _called(d, key, end("end_x", error_ref("E2")), error("E2"))
    parent = _caller(d, key, child, error_ref("E1"), error("E1") + error("E2"))
    _child_ends(d, parent)
    case = d.case(parent)
    assert d.open(parent) == ["a"], case
    assert (case["data"]["call_error"], case["data"]["call_outcome"]) == ("E2", "x"), case["data"]
    assert _noted(d, parent, error="E2", outcome="x"), d.api.history(parent)
    d.complete(parent, "a")
    finished(d, parent, None)


@runs(
    "escalation boundary on a call activity, interrupting",
    "tasks",
    "the called case's escalation end leaves the call activity by the boundary; <id>_escalation holds the code",
)
def _call_escalation(d: Driver, key: str) -> None:
    child = _called(d, key, end("end_x", escalation_ref("X1")), escalation("X1"))
    parent = _caller(d, key, child, escalation_ref("X1"), escalation("X1"))
    _child_ends(d, parent)
    case = d.case(parent)
    assert d.open(parent) == ["x"], case
    assert (case["data"]["call_escalation"], case["data"]["call_outcome"]) == ("X1", "x"), case["data"]
    assert _noted(d, parent, escalation="X1", outcome="x"), d.api.history(parent)
    d.complete(parent, "x")
    finished(d, parent, None)


@runs(
    "escalation boundary on a call activity, non-interrupting",
    "tasks",
    "the called case's escalation end opens the boundary's path, and the caller also goes on down its normal path",
)
def _call_escalation_beside(d: Driver, key: str) -> None:
    child = _called(d, key, end("end_x", escalation_ref("X1")), escalation("X1"))
    parent = _caller(d, key, child, escalation_ref("X1"), escalation("X1"), interrupting=False)
    _child_ends(d, parent)
    case = d.case(parent)
    assert d.open(parent) == ["a", "x"], case
    assert (case["data"]["call_escalation"], case["data"]["call_outcome"]) == ("X1", "x"), case["data"]
    d.complete(parent, "a")
    d.complete(parent, "x")
    finished(d, parent, None)


# Gateways -------------------------------------------------------------------------------------------


@runs("exclusive gateway", "gateways", "the first true condition, else the default flow")
def _exclusive(d: Driver, key: str) -> None:
    body = (
        start()
        + '<bpmn:exclusiveGateway id="g" default="f_g_b"/>'
        + user("a")
        + user("b")
        + end("e1")
        + end("e2")
        + flow("start", "g")
        + flow("g", "a", "n > 5")
        + flow("g", "b")
        + chain("a", "e1")
        + chain("b", "e2")
    )
    d.deployed(key, definitions(key, body, lane("a", "b")))
    assert d.open(d.start(key, n=9)["id"]) == ["a"] and d.open(d.start(key, n=1)["id"]) == ["b"]


@runs("parallel gateway", "gateways", "all branches, joined")
def _parallel(d: Driver, key: str) -> None:
    body = (
        start()
        + '<bpmn:parallelGateway id="split"/><bpmn:parallelGateway id="join"/>'
        + user("a")
        + user("b")
        + terminate("done")
        + flow("start", "split")
        + flow("split", "a")
        + flow("split", "b")
        + flow("a", "join")
        + flow("b", "join")
        + flow("join", "end_done")
    )
    d.deployed(key, definitions(key, body, lane("a", "b")))
    case = d.start(key)
    assert d.open(case["id"]) == ["a", "b"]
    d.complete(case["id"], "a")
    assert d.case(case["id"])["status"] == "open"
    d.complete(case["id"], "b")
    finished(d, case["id"], "done")


@runs("inclusive gateway", "gateways", "every branch whose condition holds, joined")
def _inclusive(d: Driver, key: str) -> None:
    body = (
        start()
        + '<bpmn:inclusiveGateway id="g" default="f_g_c"/><bpmn:inclusiveGateway id="j"/>'
        + user("a")
        + user("b")
        + user("c")
        + end()
        + flow("start", "g")
        + flow("g", "a", "n > 1")
        + flow("g", "b", "n > 5")
        + flow("g", "c")
        + flow("a", "j")
        + flow("b", "j")
        + flow("c", "j")
        + flow("j", "end")
    )
    d.deployed(key, definitions(key, body, lane("a", "b", "c")))
    case = d.start(key, n=3)
    assert d.open(case["id"]) == ["a"]
    d.complete(case["id"], "a")
    finished(d, case["id"], None)


@runs("event-based gateway", "gateways", "whichever comes first: a timer or a message")
def _event_gateway(d: Driver, key: str) -> None:
    body = (
        start() + '<bpmn:eventBasedGateway id="eg"/>' + f'<bpmn:intermediateCatchEvent id="t">{timer()}'
        "</bpmn:intermediateCatchEvent>" + f'<bpmn:intermediateCatchEvent id="m">{message_ref(f"{key}_go")}'
        "</bpmn:intermediateCatchEvent>"
        + terminate("late")
        + terminate("told")
        + flow("start", "eg")
        + flow("eg", "t")
        + flow("eg", "m")
        + chain("t", "end_late")
        + chain("m", "end_told")
    )
    d.deployed(key, definitions(key, body, top=message(f"{key}_go")))
    told, late = d.start(key), d.start(key)
    assert d.message(f"{key}_go", told["id"]).status_code == 202
    finished(d, told["id"], "told")
    d.fire_timers()
    finished(d, late["id"], "late")


@refuses("complex gateway", "gateways", "use an inclusive gateway with a condition on each flow", "cg", "inclusive")
def _complex(key: str) -> bytes:
    return definitions(
        key,
        start() + '<bpmn:complexGateway id="cg"/>' + user("a") + end() + chain("start", "cg", "a", "end"),
        lane("a"),
    )


@refuses("loop without a gateway", "gateways",
         "draw the way back through an exclusive gateway (a loop without one would never end)", "a", "排他网关")
def _loop_without_gateway(key: str) -> bytes:
    """a → wait → a, round for ever: every start of it was a 500 (SpiffWorkflow predicted the loop without end)."""
    wait = f'<bpmn:intermediateCatchEvent id="wait">{timer()}</bpmn:intermediateCatchEvent>\n'
    return definitions(key, start() + user("a") + wait + chain("start", "a", "wait", "a"), lane("a"))


# Start events -------------------------------------------------------------------------------------


@runs("none start event", "start events", "a person or a parent case opens the case")
def _none_start(d: Driver, key: str) -> None:
    d.deployed(key, definitions(key, start() + user("a") + end() + chain("start", "a", "end"), lane("a")))
    assert d.open(d.start(key)["id"]) == ["a"]


@runs("message start event", "start events", "POST /api/messages without case_id opens a case (data.cadre_id)")
def _message_start(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key,
            start(definition=message_ref(f"{key}_open")) + user("a") + end() + chain("start", "a", "end"),
            lane("a"),
            message(f"{key}_open"),
        ),
    )
    response = d.message(f"{key}_open", cadre_id="c1", note="来信")
    assert response.status_code == 201, response.get_json()
    case = d.case(response.get_json()["case_id"])
    assert (case["process"], case["cadre_id"], d.open(case["id"])) == (key, "c1", ["a"])
    assert d.message("nobody_starts_on_this", cadre_id="c1").status_code == 404


@runs(
    "message start event with a message variable",
    "start events",
    "the variable holds the message's data, as at a message catch event",
)
def _message_start_variable(d: Driver, key: str) -> None:
    """It deployed, and every case the message opened stopped at once: KeyError at the start event."""
    d.deployed(
        key,
        definitions(
            key,
            start(definition=message_ref(f"{key}_open", variable="letter")) + script("s", "said = letter['note']")
            + user("a") + end() + chain("start", "s", "a", "end"),
            lane("a"),
            message(f"{key}_open"),
        ),
    )
    response = d.message(f"{key}_open", cadre_id="c1", note="来信")
    assert response.status_code == 201, response.get_json()
    case = d.case(response.get_json()["case_id"])
    assert (case["status"], case["data"]["said"], d.open(case["id"])) == ("open", "来信", ["a"]), case


@runs(
    "timer start event",
    "start events",
    "opens one case per cadre cadreflow:startFor picks, on schedule, never a second open one",
)
def _timer_start(d: Driver, key: str) -> None:
    body = (
        start(
            definition='<bpmn:timerEventDefinition id="td"><bpmn:timeDate>"2020-01-01T00:00:00+08:00"'
            "</bpmn:timeDate></bpmn:timerEventDefinition>"
        )
        + user("a")
        + end()
        + chain("start", "a", "end")
    )
    document = definitions(key, body, lane("a")).replace(
        b'isExecutable="true">',
        b'isExecutable="true" xmlns:cadreflow="http://cadreflow.example/schema/1.0" '
        b'cadreflow:startFor="post_level == &quot;leading&quot;">',
        1,
    )
    d.deployed(key, document)
    assert d.fire_schedules() == 1 and d.fire_schedules() == 0  # fired once, claimed once
    opened = d.api.get("/api/cases", as_="admin", query_string={"process": key}).get_json()
    assert [c["cadre_id"] for c in opened["items"]] == ["c1"]  # c1 leads; the middle-level c2 does not


@refuses(
    "signal start event",
    "start events",
    "use a message start event (with cadre_id) or a timer start event",
    "start",
    "message start",
)
def _signal_start(key: str) -> bytes:
    return definitions(
        key,
        start(definition=signal_ref("go")) + user("a") + end() + chain("start", "a", "end"),
        lane("a"),
        signal("go"),
    )


@refuses(
    "several start events",
    "start events",
    "one start event per process (a case opened by one ran another's flow); branch after it, or deploy two processes",
    "s2",
    "one start event",
)
def _several_starts(key: str) -> bytes:
    """A message start and another: a case the second message opened ran the first one's flow."""
    return definitions(
        key,
        start(definition=message_ref(f"{key}_a")) + start("s2", definition=message_ref(f"{key}_b")) + user("a")
        + user("b") + end() + end("e2") + chain("start", "a", "end") + chain("s2", "b", "e2"),
        lane("a", "b"),
        message(f"{key}_a") + message(f"{key}_b"),
    )


@refuses(
    "start form without cadre_id",
    "start events",
    "a start form closed to other fields (additionalProperties false) must declare cadre_id, the case's cadre",
    "start",
    "cadre_id",
)
def _start_form_without_cadre(key: str) -> bytes:
    """It deployed, and every start was a 422: the start data always carries the case's cadre_id."""
    schema = {"type": "object", "title": "发起", "additionalProperties": False,
              "properties": {"note": {"type": "string", "title": "说明"}}}
    return definitions(
        key,
        f'<bpmn:startEvent id="start"><bpmn:extensionElements>{form(schema)}</bpmn:extensionElements>'
        "</bpmn:startEvent>" + user("a") + end() + chain("start", "a", "end"),
        lane("a"),
    )


@refuses(
    "conditional event",
    "start events",
    "test the condition on a gateway, or wait for a timer or message",
    "start",
    "gateway",
)
def _conditional(key: str) -> bytes:
    condition = (
        '<bpmn:conditionalEventDefinition id="cd"><bpmn:condition>n > 1</bpmn:condition>'
        "</bpmn:conditionalEventDefinition>"
    )
    return definitions(key, start(definition=condition) + user("a") + end() + chain("start", "a", "end"), lane("a"))


# Intermediate events --------------------------------------------------------------------------------


@runs("timer catch event", "intermediate events", 'waits for deadline("key") from the configured DEADLINES')
def _timer_catch(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key,
            start() + f'<bpmn:intermediateCatchEvent id="wait">{timer()}'
            "</bpmn:intermediateCatchEvent>" + user("a") + end() + chain("start", "wait", "a", "end"),
            lane("a"),
        ),
    )
    case = d.start(key)
    assert case["next_timer_due"] and d.open(case["id"]) == []
    d.fire_timers()
    assert d.open(case["id"]) == ["a"]


@runs(
    "message catch/throw between cases",
    "intermediate events",
    "routed to the open cases waiting for it that share its correlation property (e.g. cadre_id), or of the same cadre",
)
def _message_between(d: Driver, key: str) -> None:
    name = f"{key}_done"
    correlation = (
        f'<bpmn:correlationProperty id="cadre" name="cadre"><bpmn:correlationPropertyRetrievalExpression '
        f'messageRef="msg_{name}"><bpmn:messagePath>cadre_id</bpmn:messagePath>'
        "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>"
    )
    top = message(name) + correlation
    catch = (
        f'<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition id="m1" messageRef="msg_{name}">'
        "<bpmn:extensionElements><spiffworkflow:messageVariable>news</spiffworkflow:messageVariable>"
        "<spiffworkflow:processVariableCorrelation><spiffworkflow:propertyId>cadre</spiffworkflow:propertyId>"
        "<spiffworkflow:expression>cadre_id</spiffworkflow:expression></spiffworkflow:processVariableCorrelation>"
        "</bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateCatchEvent>"
    )
    payload = '{"cadre_id": cadre_id, "result": "ok"}'
    throw = f'<bpmn:intermediateThrowEvent id="tell">{message_ref(name, payload=payload)}</bpmn:intermediateThrowEvent>'
    d.deployed(
        f"{key}_r",
        definitions(
            f"{key}_r", start() + catch + user("a") + end() + chain("start", "wait", "a", "end"), lane("a"), top
        ),
    )
    d.deployed(key, definitions(key, start() + throw + end() + chain("start", "tell", "end"), top=top))
    mine, other = d.start(f"{key}_r"), d.api.start(f"{key}_r", "c2")
    d.start(key)  # throws for cadre c1
    assert d.case(mine["id"])["data"]["news"] == {"cadre_id": "c1", "result": "ok"} and d.open(mine["id"]) == ["a"]
    assert d.open(other["id"]) == [] and d.case(other["id"])["status"] == "open"  # c2's case did not take it


@runs(
    "signal catch/throw",
    "intermediate events",
    "every open case waiting for the signal takes it; POST /api/signals sends one",
)
def _signal(d: Driver, key: str) -> None:
    name = f"{key}_year_end"
    d.deployed(
        key,
        definitions(
            key,
            start() + f'<bpmn:intermediateCatchEvent id="wait">{signal_ref(name)}'
            "</bpmn:intermediateCatchEvent>" + terminate("closed") + chain("start", "wait", "end_closed"),
            top=signal(name),
        ),
    )
    first, second = d.start(key), d.start(key)
    response = d.signal(name)
    assert response.status_code == 202 and response.get_json() == {"delivered": 2}
    finished(d, first["id"], "closed")
    finished(d, second["id"], "closed")


@runs("link events", "intermediate events", "a jump from a link throw to the link catch of the same name")
def _link(d: Driver, key: str) -> None:
    body = (
        start() + '<bpmn:intermediateThrowEvent id="go"><bpmn:linkEventDefinition id="l1" name="jump"/>'
        '</bpmn:intermediateThrowEvent><bpmn:intermediateCatchEvent id="land"><bpmn:linkEventDefinition id="l2" '
        'name="jump"/></bpmn:intermediateCatchEvent>'
        + user("a")
        + end()
        + chain("start", "go")
        + chain("land", "a", "end")
    )
    d.deployed(key, definitions(key, body, lane("a")))
    assert d.open(d.start(key)["id"]) == ["a"]


@runs("none throw event", "intermediate events", "passes through (a milestone in the history)")
def _none_throw(d: Driver, key: str) -> None:
    d.deployed(
        key,
        definitions(
            key,
            start()
            + '<bpmn:intermediateThrowEvent id="milestone"/>'
            + user("a")
            + end()
            + chain("start", "milestone", "a", "end"),
            lane("a"),
        ),
    )
    assert d.open(d.start(key)["id"]) == ["a"]


@refuses(
    "compensation event",
    "intermediate events",
    "draw the undo steps after an error boundary event",
    "undo",
    "error boundary",
)
def _compensation(key: str) -> bytes:
    return definitions(
        key,
        start() + '<bpmn:intermediateThrowEvent id="undo"><bpmn:compensateEventDefinition id="c"/>'
        "</bpmn:intermediateThrowEvent>" + end() + chain("start", "undo", "end"),
    )


# Boundary events -----------------------------------------------------------------------------------


def _on_task(d: Driver, key: str, definition: str, interrupting: bool, top: str = "") -> int:
    body = (
        start() + user("a") + f'<bpmn:boundaryEvent id="b" attachedToRef="a" '
        f'cancelActivity="{str(interrupting).lower()}">{definition}</bpmn:boundaryEvent>'
        + user("x")
        + end("e1")
        + end("e2")
        + chain("start", "a", "e1")
        + chain("b", "x", "e2")
    )
    d.deployed(key, definitions(key, body, lane("a", "x"), top))
    return d.start(key)["id"]


@runs("timer boundary, interrupting", "boundary events", "the deadline passes: the task is left for the other path")
def _timer_boundary(d: Driver, key: str) -> None:
    case_id = _on_task(d, key, timer(), True)
    d.fire_timers()
    assert d.open(case_id) == ["x"]


@runs(
    "timer boundary, non-interrupting",
    "boundary events",
    "the deadline passes: the task stays, marked overdue, and another path opens (escalation to supervise_<task>)",
)
def _timer_boundary_keep(d: Driver, key: str) -> None:
    case_id = _on_task(d, key, timer(), False)
    d.fire_timers()
    assert d.open(case_id) == ["a", "x"]


@refuses(
    "timer cycle inside a case",
    "boundary events",
    "only a timer start event of the process repeats: use a duration timer, or loop back through a timer catch event",
    "b",
    "timer cycle",
    "duration timer",
)
def _timer_cycle_in_case(key: str) -> bytes:
    cycle = ('<bpmn:timerEventDefinition id="tc"><bpmn:timeCycle>"R3/P1D"</bpmn:timeCycle>'
             "</bpmn:timerEventDefinition>")
    body = (start() + user("a") + f'<bpmn:boundaryEvent id="b" attachedToRef="a" cancelActivity="false">{cycle}'
            "</bpmn:boundaryEvent>" + user("x") + end("e1") + end("e2") + chain("start", "a", "e1")
            + chain("b", "x", "e2"))
    return definitions(key, body, lane("a", "x"))


@runs("message boundary, interrupting", "boundary events", "the message interrupts the task")
def _message_boundary(d: Driver, key: str) -> None:
    case_id = _on_task(d, key, message_ref(f"{key}_stop"), True, message(f"{key}_stop"))
    assert d.message(f"{key}_stop", case_id).status_code == 202 and d.open(case_id) == ["x"]


@runs("message boundary, non-interrupting", "boundary events", "the message opens another path beside the task")
def _message_boundary_keep(d: Driver, key: str) -> None:
    case_id = _on_task(d, key, message_ref(f"{key}_note"), False, message(f"{key}_note"))
    assert d.message(f"{key}_note", case_id).status_code == 202 and d.open(case_id) == ["a", "x"]


@runs("signal boundary", "boundary events", "the signal interrupts the task")
def _signal_boundary(d: Driver, key: str) -> None:
    case_id = _on_task(d, key, signal_ref(f"{key}_halt"), True, signal(f"{key}_halt"))
    assert d.signal(f"{key}_halt").get_json() == {"delivered": 1} and d.open(case_id) == ["x"]


@runs(
    "error boundary on a subprocess",
    "boundary events",
    "an error end event inside is caught by the error boundary event of its subprocess",
)
def _error_boundary(d: Driver, key: str) -> None:
    sub = (
        '<bpmn:subProcess id="sub">'
        + start("s0")
        + '<bpmn:exclusiveGateway id="sg" default="f_sg_s_ok"/>'
        + end("s_err", error_ref("E1"))
        + end("s_ok")
        + flow("s0", "sg")
        + flow("sg", "s_err", "n > 5")
        + flow("sg", "s_ok")
        + "</bpmn:subProcess>"
        + f'<bpmn:boundaryEvent id="caught" attachedToRef="sub">{error_ref("E1")}</bpmn:boundaryEvent>'
    )
    body = (
        sub
        + start()
        + terminate("normal")
        + terminate("failed")
        + chain("start", "sub", "end_normal")
        + chain("caught", "end_failed")
    )
    d.deployed(key, definitions(key, body, top=error("E1")))
    finished(d, d.start(key, n=9)["id"], "failed")
    finished(d, d.start(key, n=1)["id"], "normal")


@runs(
    "escalation boundary, non-interrupting",
    "boundary events",
    "an escalation thrown inside a subprocess opens a path beside it",
)
def _escalation_boundary(d: Driver, key: str) -> None:
    sub = (
        '<bpmn:subProcess id="sub">' + start("s0") + f'<bpmn:intermediateThrowEvent id="raise">{escalation_ref("X1")}'
        "</bpmn:intermediateThrowEvent>"
        + user("inner")
        + end("s_end")
        + chain("s0", "raise", "inner", "s_end")
        + "</bpmn:subProcess>"
        + f'<bpmn:boundaryEvent id="caught" attachedToRef="sub" cancelActivity="false">'
        f"{escalation_ref('X1')}</bpmn:boundaryEvent>"
    )
    body = start() + sub + user("x") + end("e1") + end("e2") + chain("start", "sub", "e1") + chain("caught", "x", "e2")
    d.deployed(key, definitions(key, body, lane("inner", "x"), escalation("X1")))
    assert d.open(d.start(key)["id"]) == ["inner", "x"]


# End events ----------------------------------------------------------------------------------------


@runs("plain end event", "end events", "completes the case; outcome null unless an end_<outcome> event was reached")
def _plain_end(d: Driver, key: str) -> None:
    d.deployed(key, definitions(key, start() + user("a") + end() + chain("start", "a", "end"), lane("a")))
    case = d.start(key)
    d.complete(case["id"], "a")
    finished(d, case["id"], None)


@runs("terminate end event end_<outcome>", "end events", "ends every path; the outcome is the part after end_")
def _terminate(d: Driver, key: str) -> None:
    body = (
        start()
        + '<bpmn:parallelGateway id="split"/>'
        + user("a")
        + user("b")
        + terminate("stopped")
        + end("b_end")
        + flow("start", "split")
        + flow("split", "a")
        + flow("split", "b")
        + chain("a", "end_stopped")
        + chain("b", "b_end")
    )
    d.deployed(key, definitions(key, body, lane("a", "b")))
    case = d.start(key)
    d.complete(case["id"], "a")
    finished(d, case["id"], "stopped")  # b was still open: terminate ended it


@runs("message end event", "end events", "throws its message to other cases, then ends")
def _message_end(d: Driver, key: str) -> None:
    name = f"{key}_over"
    top = message(name)
    d.deployed(
        f"{key}_r",
        definitions(
            f"{key}_r",
            start() + f'<bpmn:intermediateCatchEvent id="wait">{message_ref(name)}'
            "</bpmn:intermediateCatchEvent>" + end() + chain("start", "wait", "end"),
            top=top,
        ),
    )
    d.deployed(key, definitions(key, start() + end("end", message_ref(name)) + chain("start", "end"), top=top))
    waiting = d.start(f"{key}_r")
    finished(d, d.start(key)["id"], None)
    finished(d, waiting["id"], None)


@runs("signal end event", "end events", "throws its signal to every waiting case, then ends")
def _signal_end(d: Driver, key: str) -> None:
    name = f"{key}_bell"
    top = signal(name)
    d.deployed(
        f"{key}_r",
        definitions(
            f"{key}_r",
            start() + f'<bpmn:intermediateCatchEvent id="wait">{signal_ref(name)}'
            "</bpmn:intermediateCatchEvent>" + end() + chain("start", "wait", "end"),
            top=top,
        ),
    )
    d.deployed(key, definitions(key, start() + end("end", signal_ref(name)) + chain("start", "end"), top=top))
    waiting = d.start(f"{key}_r")
    d.start(key)
    finished(d, waiting["id"], None)


# Subprocesses -------------------------------------------------------------------------------------


@runs("embedded subprocess", "subprocesses", "its tasks are tasks of the case (task lists, timers, messages)")
def _embedded(d: Driver, key: str) -> None:
    sub = (
        '<bpmn:subProcess id="sub">'
        + start("s0")
        + user("inner")
        + end("s1")
        + chain("s0", "inner", "s1")
        + "</bpmn:subProcess>"
    )
    d.deployed(
        key,
        definitions(
            key,
            start() + sub + user("after") + terminate("done") + chain("start", "sub", "after", "end_done"),
            lane("inner", "after"),
        ),
    )
    case = d.start(key)
    assert d.open(case["id"]) == ["inner"]
    d.complete(case["id"], "inner")
    d.complete(case["id"], "after")
    finished(d, case["id"], "done")


@runs(
    "terminate end event inside an embedded subprocess",
    "subprocesses",
    "ends only the subprocess: the case goes on, its outcome decided by the process's own end",
)
def _embedded_terminate(d: Driver, key: str) -> None:
    sub = (
        '<bpmn:subProcess id="sub">'
        + start("s0")
        + user("inner")
        + terminate("rejected")
        + chain("s0", "inner", "end_rejected")
        + "</bpmn:subProcess>"
    )
    body = start() + sub + user("after") + end() + chain("start", "sub", "after", "end")
    d.deployed(key, definitions(key, body, lane("inner", "after")))
    case = d.start(key)
    d.complete(case["id"], "inner")
    assert d.open(case["id"]) == ["after"] and d.case(case["id"])["outcome"] is None
    d.complete(case["id"], "after")
    finished(d, case["id"], None)  # the subprocess's end_rejected decided nothing


def _event_subprocess(d: Driver, key: str, definition: str, interrupting: bool, top: str = "") -> int:
    esp = (
        f'<bpmn:subProcess id="esp" triggeredByEvent="true"><bpmn:startEvent id="es_start" '
        f'isInterrupting="{str(interrupting).lower()}">{definition}</bpmn:startEvent>'
        + user("handle")
        + end("es_end")
        + chain("es_start", "handle", "es_end")
        + "</bpmn:subProcess>"
    )
    d.deployed(
        key,
        definitions(
            key, start() + user("main") + end() + chain("start", "main", "end") + esp, lane("main", "handle"), top
        ),
    )
    return d.start(key)["id"]


@runs(
    "event subprocess, timer, non-interrupting",
    "subprocesses",
    "its timer is scheduled; its tasks join the case's; the case ends when both are done",
)
def _esp_timer(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, timer(), False)
    assert d.case(case_id)["next_timer_due"]
    d.fire_timers()
    assert d.open(case_id) == ["handle", "main"]
    d.complete(case_id, "main")
    assert d.case(case_id)["status"] == "open"
    d.complete(case_id, "handle")
    finished(d, case_id, None)


@runs("event subprocess, message, interrupting", "subprocesses", "the message cancels the main flow")
def _esp_message(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, message_ref(f"{key}_recall"), True, message(f"{key}_recall"))
    assert d.message(f"{key}_recall", case_id).status_code == 202
    assert d.open(case_id) == ["handle"]
    d.complete(case_id, "handle")
    finished(d, case_id, None)


@runs("event subprocess, signal", "subprocesses", "a signal starts it")
def _esp_signal(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, signal_ref(f"{key}_audit"), False, signal(f"{key}_audit"))
    assert d.signal(f"{key}_audit").get_json() == {"delivered": 1} and d.open(case_id) == ["handle", "main"]


@runs("event subprocess, timer, interrupting", "subprocesses", "its timer cancels the main flow")
def _esp_timer_interrupting(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, timer(), True)
    d.fire_timers()
    assert d.open(case_id) == ["handle"]
    d.complete(case_id, "handle")
    finished(d, case_id, None)


@runs("event subprocess, message, non-interrupting", "subprocesses", "the message opens its tasks beside the main flow")
def _esp_message_beside(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, message_ref(f"{key}_ask"), False, message(f"{key}_ask"))
    assert d.message(f"{key}_ask", case_id).status_code == 202
    assert d.open(case_id) == ["handle", "main"]
    d.complete(case_id, "handle")
    assert d.open(case_id) == ["main"] and d.case(case_id)["status"] == "open"
    d.complete(case_id, "main")
    finished(d, case_id, None)


@runs("event subprocess, signal, interrupting", "subprocesses", "the signal cancels the main flow")
def _esp_signal_interrupting(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, signal_ref(f"{key}_halt"), True, signal(f"{key}_halt"))
    assert d.signal(f"{key}_halt").get_json() == {"delivered": 1}
    assert d.open(case_id) == ["handle"]
    d.complete(case_id, "handle")
    finished(d, case_id, None)


@runs("event subprocess, error", "subprocesses", "an error end event in the main flow starts it")
def _esp_error(d: Driver, key: str) -> None:
    esp = (
        f'<bpmn:subProcess id="esp" triggeredByEvent="true"><bpmn:startEvent id="es_start">{error_ref("E9")}'
        "</bpmn:startEvent>" + terminate("recovered") + chain("es_start", "end_recovered") + "</bpmn:subProcess>"
    )
    d.deployed(
        key, definitions(key, start() + end("boom", error_ref("E9")) + chain("start", "boom") + esp, top=error("E9"))
    )
    finished(d, d.start(key)["id"], "recovered")


@runs(
    "event subprocess never started",
    "subprocesses",
    "ends with the process: a waiting timer start does not keep the case open",
)
def _esp_idle(d: Driver, key: str) -> None:
    case_id = _event_subprocess(d, key, timer("slow"), False)
    d.complete(case_id, "main")
    finished(d, case_id, None)


@refuses("transaction subprocess", "subprocesses", "use an embedded subprocess", "tx", "embedded subprocess")
def _transaction(key: str) -> bytes:
    return definitions(
        key,
        start()
        + '<bpmn:transaction id="tx">'
        + start("s0")
        + end("s1")
        + chain("s0", "s1")
        + "</bpmn:transaction>"
        + end()
        + chain("start", "tx", "end"),
    )


@refuses(
    "ad-hoc subprocess",
    "subprocesses",
    "use an embedded subprocess whose tasks start from an inclusive gateway",
    "ah",
    "embedded subprocess",
)
def _ad_hoc(key: str) -> bytes:
    return definitions(
        key,
        start()
        + '<bpmn:adHocSubProcess id="ah">'
        + user("inner")
        + "</bpmn:adHocSubProcess>"
        + end()
        + chain("start", "ah", "end"),
        lane("inner"),
    )


# Loops and multi-instance ----------------------------------------------------------------------------


def _ballot(sequential: bool, condition: str, cardinality: str = "3", collection: str = "") -> str:
    """A ballot task per instance (XSD order: cardinality or input, output, input item, output item, condition)."""
    source = (
        f"<bpmn:loopDataInputRef>{collection}</bpmn:loopDataInputRef>"
        if collection
        else f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>"
    )
    item = '<bpmn:inputDataItem id="voter" name="voter"/>' if collection else ""
    completion = f"<bpmn:completionCondition>{escape(condition)}</bpmn:completionCondition>" if condition else ""
    loop = (
        f'<bpmn:multiInstanceLoopCharacteristics isSequential="{str(sequential).lower()}">{source}'
        f'<bpmn:loopDataOutputRef>votes</bpmn:loopDataOutputRef>{item}<bpmn:outputDataItem id="vote" name="vote"/>'
        f"{completion}</bpmn:multiInstanceLoopCharacteristics>"
    )
    return user("ballot", VOTE_FORM, inner=loop)


def _voting(d: Driver, key: str, sequential: bool, condition: str, **start_data: object) -> tuple[int, int]:
    d.deployed(
        key,
        definitions(
            key,
            start()
            + _ballot(sequential, condition, collection=(start_data and "voters") or "")
            + user("after")
            + end()
            + chain("start", "ballot", "after", "end"),
            lane("ballot", "after"),
        ),
    )
    case_id = d.start(key, **start_data)["id"]
    return case_id, d.complete_all(case_id, "ballot", vote=True)


@runs("multi-instance, parallel, cardinality", "multi-instance", "one task per instance; the outputs gathered")
def _mi_parallel(d: Driver, key: str) -> None:
    case_id, votes = _voting(d, key, False, "")
    assert votes == 3 and d.case(case_id)["data"]["votes"] == [True, True, True]


@runs(
    "multi-instance, sequential, completion condition",
    "multi-instance",
    "the condition sees the outputs so far and nr_of_instances, nr_of_completed_instances, nr_of_active_instances",
)
def _mi_sequential(d: Driver, key: str) -> None:
    case_id, votes = _voting(d, key, True, "len([v for v in votes if v]) >= 2 and nr_of_completed_instances >= 2")
    assert votes == 2 and d.open(case_id) == ["after"]


@runs(
    "multi-instance, parallel, completion condition",
    "multi-instance",
    'stops the remaining instances when it holds ("two of three voted yes")',
)
def _mi_parallel_condition(d: Driver, key: str) -> None:
    case_id, votes = _voting(d, key, False, "nr_of_completed_instances >= 2 and nr_of_active_instances <= 1")
    assert votes == 2 and d.open(case_id) == ["after"]


@runs("multi-instance over a collection", "multi-instance", "one instance per item of a list in the case data")
def _mi_collection(d: Driver, key: str) -> None:
    case_id, votes = _voting(d, key, False, "", voters=["甲", "乙"])
    assert votes == 2 and d.case(case_id)["data"]["votes"] == [True, True]


@runs("standard loop", "multi-instance", "repeats the task while the loop condition holds, up to loopMaximum")
def _standard_loop(d: Driver, key: str) -> None:
    loop = (
        '<bpmn:standardLoopCharacteristics loopMaximum="3"><bpmn:loopCondition>not ok</bpmn:loopCondition>'
        "</bpmn:standardLoopCharacteristics>"
    )
    d.deployed(key, definitions(key, start() + user("a", inner=loop) + end() + chain("start", "a", "end"), lane("a")))
    case_id = d.start(key)["id"]
    d.complete(case_id, "a", ok=False)
    assert d.open(case_id) == ["a"]
    d.complete(case_id, "a", ok=True)
    finished(d, case_id, None)


# Structure -----------------------------------------------------------------------------------------


@runs("lanes", "structure", "a user task's lane names its role; an unknown role is refused with the list of roles")
def _lanes(d: Driver, key: str) -> None:
    d.deployed(key, definitions(key, start() + user("a") + end() + chain("start", "a", "end"), {"committee": ["a"]}))
    assert d.start(key)["open_tasks"][0]["role"] == "committee"
    refused = d.deploy(
        f"{key}_x", definitions(f"{key}_x", start() + user("a") + end() + chain("start", "a", "end"), {"nobody": ["a"]})
    )
    assert refused.status_code == 422 and "org_dept" in str(refused.get_json())


@runs(
    "pools (collaboration)",
    "structure",
    "each executable process of the file deploys as its own key; message "
    "flows are drawn, messages are routed between cases",
)
def _pools(d: Driver, key: str) -> None:
    collaboration = (
        f'<bpmn:collaboration id="collab"><bpmn:participant id="p1" name="组织部" processRef="{key}"/>'
        '<bpmn:participant id="p2" name="外部" /></bpmn:collaboration>'
    )
    d.deployed(
        key, definitions(key, start() + user("a") + end() + chain("start", "a", "end"), lane("a"), collaboration)
    )
    assert d.open(d.start(key)["id"]) == ["a"]


@runs("data objects", "structure", "a data object written by one element is read by the next")
def _data_objects(d: Driver, key: str) -> None:
    body = (
        start() + '<bpmn:dataObject id="dobj"/><bpmn:dataObjectReference id="dref" dataObjectRef="dobj"/>'
        '<bpmn:scriptTask id="w"><bpmn:dataOutputAssociation id="doa"><bpmn:targetRef>dref</bpmn:targetRef>'
        "</bpmn:dataOutputAssociation><bpmn:script>dobj = 5</bpmn:script></bpmn:scriptTask>"
        '<bpmn:scriptTask id="r"><bpmn:property id="placeholder" name="__targetRef_placeholder"/>'
        '<bpmn:dataInputAssociation id="dia"><bpmn:sourceRef>dref</bpmn:sourceRef>'
        "<bpmn:targetRef>placeholder</bpmn:targetRef></bpmn:dataInputAssociation>"
        "<bpmn:script>doubled = dobj * 2</bpmn:script></bpmn:scriptTask>"
        + user("a")
        + end()
        + chain("start", "w", "r", "a", "end")
    )
    d.deployed(key, definitions(key, body, lane("a")))
    assert d.start(key)["data"]["doubled"] == 10


# DMN -----------------------------------------------------------------------------------------------


def decide(decision: str) -> str:
    return (
        f'<bpmn:businessRuleTask id="decide"><bpmn:extensionElements><spiffworkflow:calledDecisionId>{decision}'
        "</spiffworkflow:calledDecisionId></bpmn:extensionElements></bpmn:businessRuleTask>"
    )


def table(
    decision: str, policy: str, rules: list[tuple[str, str]], aggregation: str = "", output_values: str = ""
) -> bytes:
    aggregate = f' aggregation="{aggregation}"' if aggregation else ""
    values = f'<outputValues id="ov"><text>{output_values}</text></outputValues>' if output_values else ""
    rows = "".join(
        f'<rule id="r{i}"><inputEntry id="r{i}i"><text>{escape(entry)}</text></inputEntry>'
        f'<outputEntry id="r{i}o"><text>{escape(output)}</text></outputEntry></rule>'
        for i, (entry, output) in enumerate(rules)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" '
        f'id="d_{decision}" name="d" namespace="x"><decision id="{decision}" name="规则"><decisionTable id="t" '
        f'hitPolicy="{policy}"{aggregate}><input id="i" label="n"><inputExpression id="ie" typeRef="integer">'
        f'<text>n</text></inputExpression></input><output id="o" label="结果" name="result" typeRef="string">'
        f"{values}</output>{rows}</decisionTable></decision></definitions>"
    ).encode()


OVERLAPPING = [("> 0", '"small"'), ("> 5", '"big"'), ("> 100", '"huge"')]
DMN_CASES = {  # policy, aggregation, output values, rules, n -> result
    "FIRST": ("FIRST", "", "", OVERLAPPING, 7, "small"),
    "PRIORITY": ("PRIORITY", "", '"huge","big","small"', OVERLAPPING, 7, "big"),
    "ANY (agreeing)": ("ANY", "", "", [("> 0", '"yes"'), ("> 5", '"yes"')], 7, "yes"),
    "RULE ORDER": ("RULE ORDER", "", "", OVERLAPPING, 7, ["small", "big"]),
    "OUTPUT ORDER": ("OUTPUT ORDER", "", '"huge","big","small"', OVERLAPPING, 7, ["big", "small"]),
    "COLLECT": ("COLLECT", "", "", OVERLAPPING, 7, ["small", "big"]),
    "COLLECT SUM": ("COLLECT", "SUM", "", [("> 0", "1"), ("> 5", "10")], 7, 11),
    "COLLECT MIN": ("COLLECT", "MIN", "", [("> 0", "1"), ("> 5", "10")], 7, 1),
    "COLLECT MAX": ("COLLECT", "MAX", "", [("> 0", "1"), ("> 5", "10")], 7, 10),
    "COLLECT COUNT": ("COLLECT", "COUNT", "", OVERLAPPING, 7, 2),
    "no match": ("UNIQUE", "", "", [("< 0", '"negative"')], 7, None),
    "COLLECT, no match": ("COLLECT", "", "", [("< 0", '"negative"')], 7, []),
    "COLLECT SUM, no match": ("COLLECT", "SUM", "", [("< 0", "1")], 7, None),  # FEEL: sum([]) is null
    "COLLECT MAX, no match": ("COLLECT", "MAX", "", [("< 0", "1")], 7, None),
    "COLLECT COUNT, no match": ("COLLECT", "COUNT", "", [("< 0", "1")], 7, 0),
    "COLLECT SUM of texts": ("COLLECT", "SUM", "", OVERLAPPING, 7, None),  # FEEL: sum of non-numbers is null
    "COLLECT MIN of texts": ("COLLECT", "MIN", "", OVERLAPPING, 7, "big"),
    "COLLECT MAX of numbers and texts": ("COLLECT", "MAX", "", [("> 0", "1"), ("> 5", '"x"')], 7, None),
}


def _dmn_runs(name: str) -> Drive:
    policy, aggregation, values, rules, n, want = DMN_CASES[name]

    def drive(d: Driver, key: str) -> None:
        decision = f"{key}_table"
        d.deployed(
            key,
            definitions(
                key, start() + decide(decision) + user("a") + end() + chain("start", "decide", "a", "end"), lane("a")
            ),
            {"t.dmn": table(decision, policy, rules, aggregation, values)},
        )
        assert d.start(key, n=n)["data"]["result"] == want

    return drive


for _name in DMN_CASES:
    runs(f"DMN {_name}", "DMN", "as DMN 1.3 says (null outputs when no rule matches)")(_dmn_runs(_name))


@runs("DMN UNIQUE with several matches", "DMN", "an incident naming the decision and the rules")
def _dmn_unique_clash(d: Driver, key: str) -> None:
    decision = f"{key}_table"
    rules = [("> 0", '"a"'), ("? > n - 1", '"b"')]  # they overlap, but not so that deploy can prove it
    d.deployed(
        key,
        definitions(
            key, start() + decide(decision) + user("a") + end() + chain("start", "decide", "a", "end"), lane("a")
        ),
        {"t.dmn": table(decision, "UNIQUE", rules)},
    )
    case = d.start(key, n=7)
    assert case["status"] == "incident" and "rules 1, 2" in case["incident"]["message"], case


@refuses(
    "DMN UNIQUE with overlapping rules",
    "DMN",
    "make the rules exclusive, or use FIRST or PRIORITY",
    "decide",
    "rules 1 and 2",
    "UNIQUE",
)
def _dmn_overlap(key: str) -> bytes:
    return definitions(
        key, start() + decide(f"{key}_table") + user("a") + end() + chain("start", "decide", "a", "end"), lane("a")
    )


REFUSED_DMNS = {
    "DMN UNIQUE with overlapping rules": lambda key: {
        "t.dmn": table(f"{key}_table", "UNIQUE", [("> 0", '"a"'), ("> 5", '"b"')])
    }
}
