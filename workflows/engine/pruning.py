"""Keep a case's saved state flat: drop the finished history SpiffWorkflow no longer needs.

SpiffWorkflow keeps every task a case ever ran in one tree, and every step restores and saves all of
it, so a case that loops gets slower with every pass. What the engine still needs is the subtree
that holds every unfinished task (splits, joins, waiting events, subprocess holders all sit inside
it), plus, above it, the latest task a person completed and what it hangs from (so "return to the previous
step" finds it and can reset it, returns.py).
Everything above that is finished and nothing looks back at it; CadreFlow keeps its own history
table, and the elements those tasks completed are remembered for the case's diagram.

Cases with event subprocesses are left whole: SpiffWorkflow hangs newly triggered ones under the
tree's root.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.util.task import TaskState

PRUNED = "_pruned_completed"  # workflow data: element ids completed by tasks no longer in the tree


def prune(workflow: BpmnWorkflow, has_event_subprocesses: bool) -> int:
    """Re-root the task tree as low as is safe; returns how many tasks were dropped."""
    if has_event_subprocesses or (workflow.subprocesses and any(
            not sub.completed for sub in workflow.subprocesses.values())):
        return 0
    unfinished = [task for task in workflow.tasks.values() if not task.has_state(TaskState.FINISHED_MASK)]
    if not unfinished:
        return 0
    root = _keep_last_person_task(_common_ancestor(unfinished))
    if root is None or root is workflow.task_tree or not root.has_state(TaskState.FINISHED_MASK):
        return 0
    kept = _subtree_ids(root)
    dropped = [task for task in workflow.tasks.values() if task.id not in kept]
    _remember_completed(workflow, dropped)
    for task in dropped:
        del workflow.tasks[task.id]
    root._parent = None
    workflow.task_tree = root
    if workflow.last_task is not None and workflow.last_task.id not in kept:
        workflow.last_task = root
    return len(dropped)


def completed_elements(workflow: BpmnWorkflow) -> list[str]:
    """Elements completed by tasks that pruning removed (the diagram adds them to the live ones)."""
    return list(workflow.data.get(PRUNED, []))


def _common_ancestor(tasks: list[Any]) -> Any:
    """The deepest task that is an ancestor of (or is) every given task. Each task climbs only until it meets
    a task already placed (on the first task's path, or climbed by an earlier one), so every task of the tree
    is visited at most once, however many unfinished tasks a step leaves."""
    path = _path_to_root(tasks[0])
    meets = {id(task): index for index, task in enumerate(path)}  # a visited task -> where its climb meets path
    highest = 0
    for task in tasks[1:]:
        climbed = []
        while id(task) not in meets:
            climbed.append(task)
            task = task.parent
        meeting = meets[id(task)]
        meets.update((id(each), meeting) for each in climbed)
        highest = max(highest, meeting)
    return path[highest]


def _path_to_root(task: Any) -> list[Any]:
    """The task, its parent, ... up to the root, in that order."""
    path = []
    while task is not None:
        path.append(task)
        task = task.parent
    return path


def _keep_last_person_task(task: Any) -> Any:
    """The new root above `task`: what the latest completed person task hangs from (kept for returning),
    else at least the task's parent (an unfinished task never becomes the root: SpiffWorkflow reads a task's
    parent data)."""
    current = task.parent
    while current is not None:
        if current.state == TaskState.COMPLETED and current.task_spec.manual:
            return _hung_from(current)
        current = current.parent
    return task.parent


def _hung_from(task: Any) -> Any:
    """The task a person task hangs from (above its boundary events' split, if it has any), so that returning
    to it resets it like any task with a parent: with its start data and its boundary timers."""
    parent = task.parent
    if parent is not None and isinstance(parent.task_spec, BoundaryEventSplit):
        parent = parent.parent
    return parent if parent is not None else task


def _subtree_ids(root: Any) -> set[Any]:
    kept, pending = set(), [root]
    while pending:
        task = pending.pop()
        kept.add(task.id)
        pending.extend(task.children)
    return kept


def _remember_completed(workflow: BpmnWorkflow, dropped: list[Any]) -> None:
    done = {task.task_spec.bpmn_id for task in dropped
            if task.state == TaskState.COMPLETED and task.task_spec.bpmn_id}
    if done:
        workflow.data[PRUNED] = sorted(done | set(workflow.data.get(PRUNED, [])))
