"""Event subprocesses as BPMN means them, where SpiffWorkflow 3.2 leaves it to its caller.

- An interrupting event subprocess (its start event's `isInterrupting`, true by default) cancels
  the rest of the process it belongs to as soon as it starts.
- Event subprocesses that never started end when the process itself has nothing else left to do
  (SpiffWorkflow would keep a timer-started one waiting, and the case open, for ever).
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from .compiler import ProcessDefinition


class EventSubprocesses:
    """What to do about a process's event subprocesses during one engine run."""

    def __init__(self, process: ProcessDefinition) -> None:
        self.interrupting = process.interrupting_starts
        self.holders = process.event_subprocesses  # SpiffWorkflow parses them as plain subprocess tasks

    def interrupt_if_started(self, task: Any) -> None:
        """Called after each task completes: an interrupting start cancels its process's other paths."""
        if task.task_spec.bpmn_id not in self.interrupting:
            return
        holder = task.workflow.top_workflow.get_task_from_id(task.workflow.parent_task_id)
        keep = {holder.id, *(ancestor.id for ancestor in _ancestors(holder))}
        for other in list(holder.workflow.tasks.values()):
            if other.id not in keep and not other.has_state(TaskState.FINISHED_MASK) and not _below(other, holder):
                other.cancel()

    def close_idle(self, workflow: BpmnWorkflow) -> bool:
        """Cancel event subprocesses still waiting to start once nothing else is open; True if any was."""
        if not self.holders:
            return False
        closed = False
        for sub_workflow in [workflow, *workflow.subprocesses.values()]:
            holders = [t for t in sub_workflow.tasks.values() if t.task_spec.bpmn_id in self.holders
                       and not t.has_state(TaskState.FINISHED_MASK)]
            idle = [t for t in holders if _not_started(workflow, t)]
            others = [t for t in sub_workflow.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)
                      and t not in holders and not any(_below(t, h) for h in holders) and not _is_end(t)]
            if idle and not others:
                for holder in idle:
                    holder.cancel()
                for join in [t for t in sub_workflow.tasks.values() if t.state == TaskState.WAITING and _is_end(t)]:
                    join.task_spec._update(join)  # the end join was waiting for the cancelled branch too
                closed = True
        return closed


def _ancestors(task: Any) -> list[Any]:
    found = []
    while task.parent is not None:
        task = task.parent
        found.append(task)
    return found


def _below(task: Any, holder: Any) -> bool:
    return any(ancestor.id == holder.id for ancestor in _ancestors(task))


def _not_started(workflow: BpmnWorkflow, holder: Any) -> bool:
    sub = workflow.subprocesses.get(holder.id)
    if sub is None:
        return True
    return not any(t.state == TaskState.COMPLETED and t.task_spec.bpmn_id for t in sub.tasks.values())


def _is_end(task: Any) -> bool:
    return task.task_spec.name in ("End", f"{task.workflow.spec.name}.EndJoin")
