"""Compare two deployed versions of a process, element by element."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util.diff import SpecDiff

from . import serialization
from .compiler import ProcessDefinition
from .types import VersionDiff

_IGNORED = {"typename", "name", "inputs", "outputs"}  # structure is reported by added/removed ids


def diff_versions(old: ProcessDefinition, new: ProcessDefinition) -> VersionDiff:
    """The elements (BPMN ids) added, removed and changed from `old` to `new`."""
    diff = SpecDiff(serialization.registry(), old.spec, new.spec)
    old_ids = {ts.bpmn_id for ts in old.spec.task_specs.values() if ts.bpmn_id}
    new_ids = {ts.bpmn_id for ts in new.spec.task_specs.values() if ts.bpmn_id}
    added, removed = sorted(new_ids - old_ids), sorted(old_ids - new_ids)  # ids are the contract
    changed = {}
    for spec, attributes in diff.changed.items():
        interesting = tuple(sorted(set(attributes) - _IGNORED - {"bpmn_id"}))
        if spec.bpmn_id in new_ids and interesting:
            changed[spec.bpmn_id] = interesting
    old_forms, new_forms = old.forms, new.forms
    for element_id in sorted(set(old_forms) & set(new_forms)):
        if old_forms[element_id] != new_forms[element_id]:
            changed[element_id] = tuple(sorted({*changed.get(element_id, ()), "form"}))
    return VersionDiff(added=tuple(added), removed=tuple(removed), changed=dict(sorted(changed.items())))


def lost_elements(workflow: BpmnWorkflow, target: ProcessDefinition) -> list[str]:
    """The elements of tasks a case moved to `target` still holds that `target` has no spec for (a finished step
    kept so it can be returned to, a finished subprocess's tasks): saved, such a case would never load again."""
    lost = _without_spec(workflow.tasks.values(), target.spec)
    for sub in workflow.subprocesses.values():
        holder = workflow.get_task_from_id(sub.parent_task_id)
        lost |= _without_spec(sub.tasks.values(), target.subprocess_specs.get(holder.task_spec.spec))
    return sorted(lost)


def _without_spec(tasks: Any, spec: Any) -> set[str]:
    """Loading a task looks its spec up by name in its process's spec (serialization.py)."""
    return {task.task_spec.bpmn_id or task.task_spec.name for task in tasks
            if spec is None or task.task_spec.name not in spec.task_specs}
