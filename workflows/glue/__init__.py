"""Per-process glue: the operations BPMN service tasks may call, by process key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import accountability, admonishment, assessment, departure, integrity, public_report, rotation, vetting
from .common import Data, Params
from .ports import CaseEffects

Operation = Callable[[CaseEffects, Data, Params], dict[str, Any]]

_BY_PROCESS: tuple[Mapping[str, Operation], ...] = (
    vetting.OPERATIONS, admonishment.OPERATIONS, departure.OPERATIONS, accountability.OPERATIONS,
    assessment.OPERATIONS, rotation.OPERATIONS, integrity.OPERATIONS, public_report.OPERATIONS,
)
# One registry: any process, the shipped ones and those designers draw, may call any operation.
OPERATIONS: dict[str, Operation] = {name: op for table in _BY_PROCESS for name, op in table.items()}


@dataclass(frozen=True)
class Signature:
    """What an operation takes and gives: checked at deploy (params) and when it returns (result)."""

    params: Mapping[str, bool] = field(default_factory=dict)  # service-task parameter -> required
    reads: tuple[str, ...] = ()  # case data fields it reads (a form or start form must ask for them)
    result: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})  # JSON Schema


_TEXT, _DATE = {"type": "string"}, {"type": "string", "format": "date"}
_STARTED = {"type": "object", "properties": {"process": _TEXT}, "required": ["process"]}
_COUNT = {"type": "integer", "minimum": 0}
_TALLY = {"type": "object", "required": ["satisfied", "basically_satisfied", "dissatisfied", "total", "comments"],
          "properties": {"satisfied": _COUNT, "basically_satisfied": _COUNT, "dissatisfied": _COUNT, "total": _COUNT,
                         "comments": {"type": "array", "items": {
                             "type": "object", "properties": {"rating": _TEXT, "comment": _TEXT}}}}}
SIGNATURES: dict[str, Signature] = {
    "cadre_facts": Signature(reads=("cadre_id",), result={
        "type": "object", "required": ["promotion_ban_until", "today", "open_accountability", "latest_grade"],
        "properties": {"promotion_ban_until": _TEXT, "today": _TEXT, "open_accountability": {"type": "boolean"},
                       "latest_grade": _TEXT}}),
    "appoint": Signature(reads=("cadre_id", "proposed_post"),
                         result={"type": "object", "properties": {"post": _TEXT}, "required": ["post"]}),
    "depart": Signature(reads=("cadre_id",), result={"type": "object", "properties": {"post": _TEXT}}),
    "record_cleared_audit": Signature(reads=("cadre_id",), result={
        "type": "object", "properties": {"cleared_on": _DATE}, "required": ["cleared_on"]}),
    "apply_sanction": Signature(reads=("cadre_id", "final_sanction"), result={
        "type": "object", "required": ["sanction", "promotion_ban_until"],
        "properties": {"sanction": _TEXT, "promotion_ban_until": _DATE}}),
    "post_change_facts": Signature(reads=("cadre_id",), result={
        "type": "object", "required": ["audit_required", "post", "today"],
        "properties": {"audit_required": {"type": "boolean"}, "post": _TEXT, "today": _DATE}}),
    "apply_measure": Signature(reads=("cadre_id", "measure"), result={
        "type": "object", "required": ["post"], "properties": {"post": {"type": ["string", "null"]}}}),
    "start_accountability": Signature({"source": True, "category": False, "allegation": True}, ("cadre_id",), _STARTED),
    "start_departure_audit": Signature({"departure_reason": True, "planned_departure_on": False}, ("cadre_id",),
                                       _STARTED),
    "start_admonishment": Signature({"trigger": True, "summary": True}, ("cadre_id",), _STARTED),
    "record_assessment": Signature(reads=("cadre_id", "year", "grade"),
                                   result={"type": "object", "properties": {"grade": _TEXT}}),
    "record_organisational_handling": Signature(reads=("cadre_id", "year", "measure"),
                                                result={"type": "object", "properties": {"measure": _TEXT}}),
    "open_disclosure": Signature(reads=("cadre_id", "year"), result={
        "type": "object", "properties": {"opened_on": _DATE}, "required": ["opened_on"]}),
    "close_disclosure": Signature(reads=("cadre_id",), result=_TALLY),
    "record_integrity_evaluation": Signature(reads=("cadre_id", "evaluation_result"), result={
        "type": "object", "properties": {"result": _TEXT}, "required": ["result"]}),
}


class UnknownOperation(LookupError):
    """A service task names an operation the service has no glue for."""


def operation(name: str) -> Operation:
    """The glue function a service task calls by name."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise UnknownOperation(f"there is no operation '{name}' (不存在的服务操作)") from None


__all__ = ["OPERATIONS", "SIGNATURES", "CaseEffects", "Operation", "Signature", "UnknownOperation", "operation"]
