"""Display names of the portal's codes, translatable (the use cases keep Chinese names for the API)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

CATEGORIES = {"decision_failure": _l("决策严重失误"), "supervision_failure": _l("失职、监督不力"),
              "abuse_of_power": _l("滥用职权"), "inaction": _l("不作为、慢作为"),
              "selection_violation": _l("用人失察"), "other": _l("其他")}
CHANNELS = {"web": _l("网络举报平台"), "hotline": _l("专线举报电话"), "qq": _l("信访举报QQ"), "tv": _l("电视曝光台")}
STATUSES = {"received": _l("已受理，待分流"), "processing": _l("办理中"), "replied": _l("已答复"),
            "closed": _l("已办结")}


def names() -> dict[str, dict[str, object]]:
    """For templates: `report_labels.category[code]` and so on."""
    return {"report_labels": {"category": CATEGORIES, "channel": CHANNELS, "status": STATUSES}}
