"""Glue of `accountability`: applying the sanction and its half-year promotion ban."""

from __future__ import annotations

from typing import Any

from .common import Data, Params, add_months, start_departure_audit
from .ports import CaseEffects

PROMOTION_BAN_MONTHS = 6  # seed 三(五): 对被问责的干部，原则上半年内不得提拔重用


def apply_sanction(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Record the final sanction; the cadre may not be promoted for six months."""
    ban_until = add_months(effects.today, PROMOTION_BAN_MONTHS)
    effects.record_sanction(data["cadre_id"], data["final_sanction"], ban_until)
    return {"sanction": data["final_sanction"], "promotion_ban_until": ban_until.isoformat()}


OPERATIONS = {"apply_sanction": apply_sanction, "start_departure_audit": start_departure_audit}
