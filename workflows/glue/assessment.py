"""Glue of `annual_assessment`: grades and organisational measures recorded on the cadre."""

from __future__ import annotations

from typing import Any

from workflows.glue.common import Data, Params, post_change_facts, start_admonishment
from workflows.glue.ports import CaseEffects


def record_assessment(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Record the year's grade on the cadre."""
    effects.record_assessment(data["cadre_id"], int(data["year"]), data["grade"])
    return {"grade": data["grade"]}


def record_organisational_handling(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Record the organisational measure taken after an 不称职 grade."""
    effects.record_measure(data["cadre_id"], int(data["year"]), data["measure"])
    return {"measure": data["measure"]}


POST_MEASURES = ("deputy_post", "non_leading_post", "technical_post", "removal")  # they take the cadre out of the post


def apply_measure(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Apply a measure that changes the post: `removal` leaves it empty, the others take `new_post`
    (empty when the form left it out: the next post then comes by appointment)."""
    if data["measure"] not in POST_MEASURES:
        return {"post": None}
    post = "" if data["measure"] == "removal" else str(data.get("new_post") or "")
    effects.set_post(data["cadre_id"], post, effects.today if post else None)
    return {"post": post}


OPERATIONS = {
    "apply_measure": apply_measure,
    "post_change_facts": post_change_facts,
    "record_assessment": record_assessment,
    "record_organisational_handling": record_organisational_handling,
    "start_admonishment": start_admonishment,
}
