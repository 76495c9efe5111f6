"""Glue of `pre_appointment_vetting`: eligibility facts, the audit a sitting leading cadre owes, the appointment."""

from __future__ import annotations

from typing import Any

from .common import Data, Params, post_change_facts
from .ports import CaseEffects


def cadre_facts(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """Facts the eligibility table decides on."""
    return effects.cadre_facts(data["cadre_id"])


def appoint(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """The cadre takes the proposed post from today."""
    effects.set_post(data["cadre_id"], data["proposed_post"], effects.today)
    return {"post": data["proposed_post"]}


OPERATIONS = {"cadre_facts": cadre_facts, "appoint": appoint, "post_change_facts": post_change_facts}
