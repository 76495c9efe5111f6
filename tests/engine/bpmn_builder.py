"""Build small BPMN/DMN documents inline for sandbox and deployment tests."""

from __future__ import annotations

import json
from itertools import pairwise
from xml.sax.saxutils import escape, quoteattr

KEY = "sandbox_case"
FORM = {"type": "object", "title": "审核", "properties": {"ok": {"type": "boolean", "title": "好"}},
        "required": ["ok"], "additionalProperties": False}
HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
    '  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"\n'
    '  id="defs_{key}" targetNamespace="http://cadreflow.example/test">\n'
)


def form_schema(schema: dict | str = FORM) -> str:
    text = schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)
    return f"<spiffworkflow:formSchema>{escape(text)}</spiffworkflow:formSchema>"


def document(body: str, lanes: dict[str, list[str]], key: str = KEY) -> bytes:
    """A definitions document with one executable process: a lane set, then the body elements."""
    lane_xml = "".join(
        f'      <bpmn:lane id="lane_{name}" name="{name}">'
        + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs)
        + "</bpmn:lane>\n"
        for name, refs in lanes.items()
    )
    return (HEADER.format(key=key)
            + f'  <bpmn:process id="{key}" name="测试流程" isExecutable="true">\n'
            + (f'    <bpmn:laneSet id="lanes">\n{lane_xml}    </bpmn:laneSet>\n' if lanes else "")
            + body
            + "  </bpmn:process>\n</bpmn:definitions>\n").encode()


def script_process(script: str = "x = 1", *, condition: str | None = None, pre_script: str | None = None,
                   post_script: str | None = None, timer: str | None = None, service_param: str | None = None,
                   assignee: str | None = None, decision: str | None = None, key: str = KEY) -> bytes:
    """start → script task `run_script` → [service `call_service`] → [rule `decide`] → [gateway `gw_check`]
    → user task `review` (lane org_dept) [with boundary timer `review_late`] → terminate end `end_done`."""
    chain = ["start", "run_script"]
    body = ['    <bpmn:startEvent id="start" name="开始"/>\n',
            '    <bpmn:scriptTask id="run_script" name="脚本">\n'
            f"      <bpmn:script>{escape(script)}</bpmn:script>\n"
            "    </bpmn:scriptTask>\n"]
    if service_param is not None:
        chain.append("call_service")
        body.append('    <bpmn:serviceTask id="call_service" name="服务">\n'
                    "      <bpmn:extensionElements>\n"
                    '        <spiffworkflow:serviceTaskOperator id="cadre_facts" resultVariable="facts">\n'
                    "          <spiffworkflow:parameters>"
                    f'<spiffworkflow:parameter id="p" type="str" value={quoteattr(service_param)}/>'
                    "</spiffworkflow:parameters>\n"
                    "        </spiffworkflow:serviceTaskOperator>\n"
                    "      </bpmn:extensionElements>\n"
                    "    </bpmn:serviceTask>\n")
    if decision is not None:
        chain.append("decide")
        body.append('    <bpmn:businessRuleTask id="decide" name="规则">\n'
                    "      <bpmn:extensionElements>"
                    f"<spiffworkflow:calledDecisionId>{decision}</spiffworkflow:calledDecisionId>"
                    "</bpmn:extensionElements>\n"
                    "    </bpmn:businessRuleTask>\n")
    if condition is not None:
        chain.append("gw_check")
        body.append('    <bpmn:exclusiveGateway id="gw_check" name="检查" default="f_skip"/>\n'
                    '    <bpmn:sequenceFlow id="f_cond" sourceRef="gw_check" targetRef="review">\n'
                    f"      <bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression>\n"
                    "    </bpmn:sequenceFlow>\n"
                    '    <bpmn:sequenceFlow id="f_skip" sourceRef="gw_check" targetRef="end_skipped"/>\n'
                    '    <bpmn:endEvent id="end_skipped"><bpmn:terminateEventDefinition id="term_skip"/>'
                    "</bpmn:endEvent>\n")
    else:
        chain.append("review")
    extensions = [form_schema()]
    if pre_script is not None:
        extensions.append(f"<spiffworkflow:preScript>{escape(pre_script)}</spiffworkflow:preScript>")
    if post_script is not None:
        extensions.append(f"<spiffworkflow:postScript>{escape(post_script)}</spiffworkflow:postScript>")
    if assignee is not None:
        extensions.append("<spiffworkflow:properties>"
                          f'<spiffworkflow:property name="assignee" value={quoteattr(assignee)}/>'
                          "</spiffworkflow:properties>")
    body.append('    <bpmn:userTask id="review" name="审核">\n'
                f"      <bpmn:extensionElements>{''.join(extensions)}</bpmn:extensionElements>\n"
                "    </bpmn:userTask>\n"
                '    <bpmn:sequenceFlow id="f_done" sourceRef="review" targetRef="end_done"/>\n'
                '    <bpmn:endEvent id="end_done" name="完成"><bpmn:terminateEventDefinition id="term_done"/>'
                "</bpmn:endEvent>\n")
    if timer is not None:
        body.append('    <bpmn:boundaryEvent id="review_late" attachedToRef="review" cancelActivity="false">\n'
                    '      <bpmn:timerEventDefinition id="timer_def">'
                    f"<bpmn:timeDuration>{escape(timer)}</bpmn:timeDuration></bpmn:timerEventDefinition>\n"
                    "    </bpmn:boundaryEvent>\n"
                    '    <bpmn:sequenceFlow id="f_late" sourceRef="review_late" targetRef="late_done"/>\n'
                    '    <bpmn:endEvent id="late_done"/>\n')
    body += [f'    <bpmn:sequenceFlow id="f_{i}" sourceRef="{a}" targetRef="{b}"/>\n'
             for i, (a, b) in enumerate(pairwise(chain))]
    return document("".join(body), {"org_dept": ["review"]}, key)


def user_task(element_id: str, extensions: str) -> str:
    return (f'    <bpmn:userTask id="{element_id}" name="任务">\n'
            f"      <bpmn:extensionElements>{extensions}</bpmn:extensionElements>\n"
            "    </bpmn:userTask>\n")


def chain_process(tasks: list[tuple[str, str]], lanes: dict[str, list[str]], key: str = KEY) -> bytes:
    """start → each user task (id, extension XML) in order → terminate end `end_done`."""
    ids = ["start"] + [element_id for element_id, _ in tasks] + ["end_done"]
    body = ['    <bpmn:startEvent id="start"/>\n']
    body += [user_task(element_id, extensions) for element_id, extensions in tasks]
    body.append('    <bpmn:endEvent id="end_done"><bpmn:terminateEventDefinition id="term"/></bpmn:endEvent>\n')
    body += [f'    <bpmn:sequenceFlow id="f_{i}" sourceRef="{a}" targetRef="{b}"/>\n'
             for i, (a, b) in enumerate(pairwise(ids))]
    return document("".join(body), lanes, key)


def named_chain(element_id: str = "review", name: str = "任务", process_name: str = "测试流程",
                end_id: str = "end_done") -> bytes:
    """One user task in the org_dept lane, with the given ids and names."""
    bpmn = chain_process([(element_id, form_schema())], {"org_dept": [element_id]}).decode()
    bpmn = bpmn.replace('name="任务"', f'name="{name}"').replace('name="测试流程"', f'name="{process_name}"')
    return bpmn.replace('"end_done"', f'"{end_id}"').encode()


def decision_table(decision_id: str, input_expression: str, input_entry: str, output_entry: str) -> bytes:
    """A one-rule DMN table deciding `result` from one input."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs_dmn" name="测试"'
        ' namespace="http://cadreflow.example/dmn">\n'
        f'  <decision id="{decision_id}" name="测试规则">\n'
        '    <decisionTable id="table" hitPolicy="UNIQUE">\n'
        '      <input id="in_1" label="输入"><inputExpression id="in_1_expr" typeRef="string">'
        f"<text>{escape(input_expression)}</text></inputExpression></input>\n"
        '      <output id="out_1" label="结果" name="result" typeRef="string"/>\n'
        '      <rule id="rule_1">'
        f'<inputEntry id="rule_1_in"><text>{escape(input_entry)}</text></inputEntry>'
        f'<outputEntry id="rule_1_out"><text>{escape(output_entry)}</text></outputEntry></rule>\n'
        "    </decisionTable>\n"
        "  </decision>\n"
        "</definitions>\n"
    ).encode()


def line_of(content: bytes, needle: str) -> int:
    """1-based line of the first occurrence of needle."""
    index = content.decode().index(needle)
    return content.decode().count("\n", 0, index) + 1
