"""Glue shared by several processes: linked child cases and date arithmetic."""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from .ports import CaseEffects

Params = dict[str, Any]
Data = dict[str, Any]


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month (Aug 31 + 6 = Feb 28/29)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def start_accountability(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Open an accountability case for the same cadre."""
    effects.start_child_case("accountability", {
        "cadre_id": data["cadre_id"], "source": params["source"],
        "category": params.get("category", "other"), "allegation": params["allegation"],
    })
    return {"process": "accountability"}


def start_departure_audit(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Open a departure audit for the same cadre (audit first, then departure)."""
    effects.start_child_case("departure_audit", {
        "cadre_id": data["cadre_id"], "departure_reason": params["departure_reason"],
        "planned_departure_on": params.get("planned_departure_on") or effects.today.isoformat(),
    })
    return {"process": "departure_audit"}


def start_admonishment(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Open an admonishment case for the same cadre."""
    effects.start_child_case("admonishment", {
        "cadre_id": data["cadre_id"], "trigger": params["trigger"], "summary": params["summary"],
    })
    return {"process": "admonishment"}


def post_change_facts(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Whether taking the cadre out of its post must wait for a departure audit (先审计，后离任)."""
    return effects.post_change_facts(data["cadre_id"])
