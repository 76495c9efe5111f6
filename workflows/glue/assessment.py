"""Glue of `annual_assessment`: grades and organisational measures recorded on the cadre."""

from __future__ import annotations

from typing import Any

from workflows.glue.common import Data, Params, start_admonishment
from workflows.glue.ports import CaseEffects


def record_assessment(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Record the year's grade on the cadre."""
    effects.record_assessment(data["cadre_id"], int(data["year"]), data["grade"])
    return {"grade": data["grade"]}


def record_organisational_handling(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Record the organisational measure taken after an 不称职 grade."""
    effects.record_measure(data["cadre_id"], int(data["year"]), data["measure"])
    return {"measure": data["measure"]}


OPERATIONS = {
    "record_assessment": record_assessment,
    "record_organisational_handling": record_organisational_handling,
    "start_admonishment": start_admonishment,
}
