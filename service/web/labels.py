"""Display names of the codes the use cases return (roles, statuses, outcomes, history actions)."""

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
}
ACTIONS = {
    "start": _l("发起"), "claim": _l("认领"), "unclaim": _l("退回认领"), "complete": _l("办理"),
    "timer": _l("计时器触发"), "message": _l("收到消息"), "escalation": _l("督办"), "cancel": _l("撤销"),
    "automatic": _l("自动步骤"), "end": _l("结束"), "child_started": _l("发起关联案件"),
    "incident": _l("故障"), "migrate": _l("迁移版本"), "retry": _l("重试"), "overdue": _l("逾期"),
}
POST_LEVELS = {"leading": _l("领导干部"), "middle": _l("中层干部"), "staff": _l("一般干部")}
SANCTIONS = {
    "public_apology": _l("责令公开道歉"), "suspension": _l("停职检查"), "resign_voluntarily": _l("引咎辞职"),
    "ordered_resignation": _l("责令辞职"), "removal": _l("免职"),
}
GRADES = {"excellent": _l("优秀"), "competent": _l("称职"), "basic": _l("基本称职"), "incompetent": _l("不称职")}
TABLES = {"role": ROLES, "status": STATUSES, "task_status": TASK_STATUSES, "outcome": OUTCOMES,
          "action": ACTIONS, "post_level": POST_LEVELS, "sanction": SANCTIONS, "grade": GRADES}


def label(table: str, code: str | None) -> str:
    """The display name of a code, or the code itself when it has none (e.g. a designer's new outcome)."""
    if not code:
        return ""
    return str(TABLES[table].get(code, code))
