"""Glue of `departure_audit`: referral, the cleared audit, and leaving the post."""

from __future__ import annotations

from typing import Any

from .common import Data, Params, start_accountability
from .ports import CaseEffects


def record_cleared_audit(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """The audit is concluded: recorded on the cadre."""
    effects.record_cleared_audit(data["cadre_id"])
    return {"cleared_on": effects.today.isoformat()}


def depart(effects: CaseEffects, data: Data, params: Params) -> dict[str, Any]:
    """The cadre leaves the post."""
    effects.set_post(data["cadre_id"], "", None)
    return {"post": ""}


OPERATIONS = {
    "start_accountability": start_accountability,
    "record_cleared_audit": record_cleared_audit,
    "depart": depart,
}
