"""Display names of the codes the use cases return (roles, statuses, outcomes, history actions, ledger entries),
for the web pages, the JSON API and the documents alike."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ROLES = {
    "org_dept": _l("组织部干部科"), "org_head": _l("组织部部长"), "committee": _l("县委常委会"),
    "discipline": _l("纪委监委"), "discipline_head": _l("纪委书记"), "audit": _l("审计局"),
    "audit_head": _l("审计局局长"), "designer": _l("流程设计员"), "admin": _l("系统管理员"),
}
STATUSES = {"open": _l("办理中"), "completed": _l("已办结"), "cancelled": _l("已撤销"), "incident": _l("故障")}
TASK_STATUSES = {"open": _l("待办"), "completed": _l("已办理"), "cancelled": _l("已取消")}
OUTCOMES = {
    "appointed": _l("已任用"), "not_appointed": _l("不予任用"), "ineligible": _l("不符合任职资格"),
    "rejected": _l("不予通过"), "dismissed": _l("不予诫勉"), "rectified": _l("已整改"),
    "escalated": _l("移送问责"), "closed": _l("已结案"), "departed": _l("已离任"), "held": _l("暂缓离任"),
    "unfounded": _l("问题不属实"), "no_sanction": _l("不予问责"), "sanctioned": _l("已问责"),
    "excellent": _l("优秀"), "competent": _l("称职"), "basic": _l("基本称职"), "incompetent": _l("不称职"),
    "rotating": _l("轮岗交流"), "kept": _l("留任"),
    "accountability": _l("已启动问责"), "admonishment": _l("已转诫勉"), "transferred": _l("已转办"),
    "not_accepted": _l("不予受理"),
}
ACTIONS = {
    "start": _l("发起"), "claim": _l("认领"), "unclaim": _l("退回认领"), "complete": _l("办理"),
    "timer": _l("计时器触发"), "message": _l("收到消息"), "escalation": _l("督办"), "cancel": _l("撤销"),
    "automatic": _l("自动步骤"), "end": _l("结束"), "child_started": _l("发起关联案件"),
    "incident": _l("故障"), "migrate": _l("迁移版本"), "retry": _l("重试"), "overdue": _l("逾期"),
    "attach": _l("上传附件"), "comment": _l("发表意见"), "assign": _l("转交"), "substitute": _l("转交代理人"),
    "designate": _l("按流程指定办理人"), "extend": _l("延长期限"), "return": _l("退回上一步"),
    "link_cadre": _l("关联干部"), "child_cancelled": _l("撤销被调用的关联案件"),
    "call_result_dropped": _l("关联案件结果未采用"), "call_done": _l("被调用的关联案件结束"),
    "delivery_given_up": _l("发出的消息无案件接收"),
}
# Why an automatic step decided as it did (the `…_reason` codes of decision tables).
REASONS = {
    "promotion_ban": _l("处于受处分影响期内，不得提拔"), "open_accountability": _l("有未结的问责案件"),
    "incompetent_grade": _l("最近一次年度考核为不称职"),
}
POST_LEVELS = {"leading": _l("领导干部"), "middle": _l("中层干部"), "staff": _l("一般干部")}
SANCTIONS = {
    "public_apology": _l("责令公开道歉"), "suspension": _l("停职检查"), "resign_voluntarily": _l("引咎辞职"),
    "ordered_resignation": _l("责令辞职"), "removal": _l("免职"),
}
REPORT_KINDS = {"family": _l("家庭成员变动"), "property": _l("财产变动"), "other": _l("其他事项")}
GRADES = {"excellent": _l("优秀"), "competent": _l("称职"), "basic": _l("基本称职"), "incompetent": _l("不称职")}
# 述职述廉: the result the DMN table integrity_conclusion gives a disclosure.
INTEGRITY_RESULTS = {"satisfactory": _l("满意"), "dissatisfied": _l("不满意")}
# What a ledger entry is about (service/usecases/ledgers.py ENTRY_TYPES).
LEDGER_ENTRIES = {
    "sanction": _l("处分"), "accountability": _l("问责"), "audit_finding": _l("审计发现"),
    "public_report": _l("信访举报"), "personal_report": _l("个人有关事项"), "admonishment": _l("诫勉"),
    "assessment": _l("年度考核"), "integrity_review": _l("述职述廉"), "learning": _l("学习"),
    "rotation_review": _l("轮岗交流"),
}
READS = {
    "case": _l("案件（接口）"), "history": _l("办理记录（接口）"), "diagram": _l("流程图（接口）"),
    "task": _l("任务（接口）"), "cadre": _l("干部档案（接口）"), "learning": _l("学习档案（接口）"),
    "case_page": _l("案件页面"), "task_page": _l("任务页面"), "cadre_page": _l("干部页面"),
    "document": _l("案件文书"), "comments": _l("案件意见（接口）"), "attachments": _l("附件列表（接口）"),
    "attachment": _l("附件下载"), "cadre_list": _l("干部名单（接口）"), "ledger": _l("干部台账"),
    "report_page": _l("举报页面"), "documents": _l("案件文书列表（接口）"), "disclosure": _l("述职述廉公示详情"),
}
# A case's printable documents (service/usecases/documents.py KINDS), named in the UI; the PDFs stay Chinese.
DOCUMENTS = {"vetting_notice": _l("任前公示公告"), "admonishment_record": _l("诫勉谈话记录"),
             "accountability_decision": _l("问责决定书"), "departure_audit_conclusion": _l("离任审计结论")}
# What a diff names: BPMN element types, what changed about an element, and how.
ELEMENT_KINDS = {
    "userTask": _l("用户任务"), "serviceTask": _l("服务任务"), "scriptTask": _l("脚本任务"),
    "businessRuleTask": _l("业务规则任务"), "task": _l("任务"), "manualTask": _l("手工任务"),
    "sendTask": _l("发送任务"), "receiveTask": _l("接收任务"), "callActivity": _l("调用活动"),
    "subProcess": _l("子流程"), "transaction": _l("事务子流程"), "adHocSubProcess": _l("自由子流程"),
    "startEvent": _l("开始事件"), "endEvent": _l("结束事件"), "intermediateCatchEvent": _l("中间捕获事件"),
    "intermediateThrowEvent": _l("中间抛出事件"), "boundaryEvent": _l("边界事件"),
    "exclusiveGateway": _l("排他网关"), "parallelGateway": _l("并行网关"), "inclusiveGateway": _l("包容网关"),
    "eventBasedGateway": _l("事件网关"), "complexGateway": _l("复杂网关"), "sequenceFlow": _l("顺序流"),
    "lane": _l("泳道"), "decision": _l("决策表"),
}
ASPECTS = {
    "name": _l("名称"), "lane": _l("泳道"), "form": _l("表单"), "condition": _l("条件"), "script": _l("脚本"),
    "timer": _l("计时器"), "event": _l("事件定义"), "decision": _l("决策表引用"), "assignee": _l("指派人"),
    "instructions": _l("办理说明"), "service": _l("服务操作"), "documentation": _l("说明"), "loop": _l("多实例"),
    "default_flow": _l("默认分支"), "connection": _l("连线端点"), "attached_to": _l("附着元素"),
    "called_process": _l("调用的流程"), "interrupting": _l("是否中断"), "members": _l("泳道成员"),
    "table": _l("规则表"), "attributes": _l("其他属性"), "extensions": _l("其他扩展设置"), "text": _l("内容"),
    "other": _l("其他"),
}
CHANGES = {"added": _l("新增"), "removed": _l("删除"), "changed": _l("修改"), "none": _l("无变化"),
           "layout": _l("仅布局变化"), "process": _l("流程有变化"), "new": _l("新流程"),
           "ok": _l("可迁移"), "migrated": _l("已迁移"), "refused": _l("不能迁移")}
TABLES = {"read": READS, "role": ROLES, "status": STATUSES, "task_status": TASK_STATUSES, "outcome": OUTCOMES,
          "action": ACTIONS, "reason": REASONS, "post_level": POST_LEVELS, "sanction": SANCTIONS, "grade": GRADES,
          "report_kind": REPORT_KINDS, "kind": ELEMENT_KINDS, "aspect": ASPECTS, "change": CHANGES,
          "integrity_result": INTEGRITY_RESULTS, "ledger_entry": LEDGER_ENTRIES, "document": DOCUMENTS}


def label(table: str, code: str | None) -> str:
    """The display name of a code, or the code itself when it has none (e.g. a designer's new outcome)."""
    if not code:
        return ""
    return str(TABLES[table].get(code, code))
