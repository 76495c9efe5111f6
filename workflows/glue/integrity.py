"""Glue of `integrity_report` (述职述廉): the public disclosure, its tallies, the result on the cadre."""

from __future__ import annotations

from typing import Any

from workflows.glue.common import Data, Params, start_admonishment
from workflows.glue.ports import CaseEffects


def open_disclosure(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Put the year's reports before the public for rating (公开公示)."""
    effects.open_disclosure(data["cadre_id"], int(data["year"]))
    return {"opened_on": effects.today.isoformat()}


def close_disclosure(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """End the disclosure period and return its tallies and comments."""
    return effects.close_disclosure()


def record_integrity_evaluation(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Record the public evaluation's result on the cadre (作风台账)."""
    effects.record_integrity_evaluation(data["evaluation_result"], data.get("conclusion", ""))
    return {"result": data["evaluation_result"]}


OPERATIONS = {
    "open_disclosure": open_disclosure,
    "close_disclosure": close_disclosure,
    "record_integrity_evaluation": record_integrity_evaluation,
    "start_admonishment": start_admonishment,
}
