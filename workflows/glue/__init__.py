"""Per-process glue: the operations BPMN service tasks may call, by process key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import accountability, admonishment, assessment, departure, rotation, vetting
from .common import Data, Params
from .ports import CaseEffects

Operation = Callable[[CaseEffects, Data, Params], dict[str, Any]]

OPERATIONS: dict[str, dict[str, Operation]] = {
    "pre_appointment_vetting": vetting.OPERATIONS,
    "admonishment": admonishment.OPERATIONS,
    "departure_audit": departure.OPERATIONS,
    "accountability": accountability.OPERATIONS,
    "annual_assessment": assessment.OPERATIONS,
    "rotation_review": rotation.OPERATIONS,
}


class UnknownOperation(LookupError):
    """A service task names an operation its process has no glue for."""


def operation(process_key: str, name: str) -> Operation:
    """The glue function a process's service task calls by name."""
    try:
        return OPERATIONS[process_key][name]
    except KeyError:
        raise UnknownOperation(f"process {process_key} has no operation '{name}'") from None


__all__ = ["OPERATIONS", "CaseEffects", "Operation", "UnknownOperation", "operation"]
