"""BPMN constructs CadreFlow refuses at deploy, each with what to draw instead.

Everything else that SpiffWorkflow parses runs as BPMN says (see bpmn/CONVENTIONS.md, whose table
the conformance suite in tests/conformance keeps true). These would deploy and then misbehave: never
fire, fail at start, or act in a way the designer did not draw.
"""

from __future__ import annotations

from lxml import etree

from .errors import Problem

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN}

# localname -> (what it is, why it is refused and what to use instead); English, then Chinese.
REFUSED_ELEMENTS: dict[str, tuple[str, str]] = {
    "complexGateway": (
        "complex gateway; use an inclusive gateway with a condition on each flow",
        "不支持复杂网关，请改用包容网关并在各分支上设置条件"),
    "adHocSubProcess": (
        "ad-hoc subprocess; use an embedded subprocess whose tasks start from an inclusive gateway",
        "不支持自由子流程，请改用嵌入子流程，由包容网关启动其中的任务"),
    "transaction": (
        "transaction subprocess (it needs cancel and compensation events); use an embedded subprocess",
        "不支持事务子流程（需要取消与补偿事件），请改用嵌入子流程"),
}
REFUSED_DEFINITIONS: dict[str, tuple[str, str]] = {
    "conditionalEventDefinition": (
        "conditional event (it would never fire); test the condition on a gateway after the step that "
        "changes it, or wait for a timer or a message",
        "不支持条件事件（永远不会触发），请在改变数据的步骤之后用网关判断，或改用定时器、消息"),
    "compensateEventDefinition": (
        "compensation event; draw the undo steps after an error boundary event",
        "不支持补偿事件，请在错误边界事件之后画出撤销步骤"),
    "cancelEventDefinition": (
        "cancel event (transactions are not supported); use an error end event and an error boundary event",
        "不支持取消事件，请改用错误结束事件与错误边界事件"),
}
SIGNAL_START = (
    "signal start event on the process (a signal names no cadre to open a case for); use a message start "
    "event (POST /api/messages with data.cadre_id) or a timer start event",
    "流程不支持信号启动事件（信号不指明干部），请改用消息启动事件（POST /api/messages，含 cadre_id）或定时启动事件")

# SpiffWorkflow starts a case down the first start event's flow whichever trigger opened it: a case opened by a
# second message start (or a timer start beside a none start) ran the other flow.
SEVERAL_STARTS = (
    "a second start event on the process (a case opened by it would run the first one's flow); keep one start "
    "event per process: branch after it with a gateway, or deploy the other start as a process of its own",
    "每个流程只能有一个启动事件（由第二个启动事件开启的案件会走第一个启动事件的流程）；请在启动事件之后用网关分支，"
    "或把另一种启动方式部署为单独的流程")

CYCLE_IN_CASE = (
    "timer cycle inside a case (only a timer start event of the process repeats; a cycle on a boundary, catch "
    "or event-subprocess start event would never fire); use a duration timer, or loop back through a timer "
    "catch event",
    "仅流程的定时启动事件支持循环定时，案件内（边界、捕获或事件子流程启动事件上）的循环定时器永远不会触发；"
    "请改用时长定时器，或经定时捕获事件循环")


def unsupported(root: etree._Element) -> list[Problem]:
    """Every element of the document that CadreFlow refuses, named with what to use instead."""
    problems = []
    for element in root.iter():
        if not isinstance(element.tag, str) or etree.QName(element).namespace != BPMN:
            continue
        name = etree.QName(element).localname
        owner = element if name in REFUSED_ELEMENTS else element.getparent()
        reason = REFUSED_ELEMENTS.get(name) or REFUSED_DEFINITIONS.get(name) or _signal_start(element) \
            or _cycle_in_case(element)
        if reason is None and name == "startEvent" and _is_process_start(element) and _follows_a_start(element):
            reason, owner = SEVERAL_STARTS, element
        if reason is not None and owner is not None:
            problems.append(Problem.of(f"not supported: {reason[0]}", reason[1], owner.get("id"), owner.sourceline))
    return problems


def _signal_start(element: etree._Element) -> tuple[str, str] | None:
    if etree.QName(element).localname != "signalEventDefinition":
        return None
    return SIGNAL_START if _is_process_start(element.getparent()) else None


def _cycle_in_case(element: etree._Element) -> tuple[str, str] | None:
    """A timerEventDefinition with a timeCycle, unless its event is a start event of the process itself."""
    if etree.QName(element).localname != "timerEventDefinition" or element.find("bpmn:timeCycle", NS) is None:
        return None
    return None if _is_process_start(element.getparent()) else CYCLE_IN_CASE


def _follows_a_start(event: etree._Element) -> bool:
    """Whether a start event of a process comes after another start event of it."""
    return any(etree.QName(before).localname == "startEvent" for before in event.itersiblings(preceding=True)
               if isinstance(before.tag, str) and etree.QName(before).namespace == BPMN)


def _is_process_start(event: etree._Element | None) -> bool:
    return event is not None and etree.QName(event).localname == "startEvent" and \
        etree.QName(event.getparent()).localname == "process"


def resolve_links(root: etree._Element) -> list[Problem]:
    """Turn each link throw event into a sequence flow to the link catch event of the same name (in the
    same process or subprocess): links are drawn connectors, and SpiffWorkflow ends the path at the
    throw instead. A throw without its catch is a problem."""
    problems = []
    for container in [*root.iterfind("bpmn:process", NS), *root.iterfind(".//bpmn:subProcess", NS)]:
        catches = {link.get("name"): link.getparent() for link in container.iterfind(
            "bpmn:intermediateCatchEvent/bpmn:linkEventDefinition", NS)}
        for link in container.iterfind("bpmn:intermediateThrowEvent/bpmn:linkEventDefinition", NS):
            throw, catch = link.getparent(), catches.get(link.get("name"))
            if catch is None:
                problems.append(Problem.of(f"link throw event '{link.get('name')}' has no link catch event of that "
                                           f"name here", f"链接事件 {link.get('name')} 没有对应的链接捕获事件",
                                           throw.get("id"), throw.sourceline))
                continue
            etree.SubElement(container, f"{{{BPMN}}}sequenceFlow", id=f"link_{throw.get('id')}_{catch.get('id')}",
                             sourceRef=throw.get("id"), targetRef=catch.get("id"))
            throw.remove(link)
    for catch in root.iterfind(".//bpmn:intermediateCatchEvent/bpmn:linkEventDefinition", NS):
        catch.getparent().remove(catch)
    return problems
