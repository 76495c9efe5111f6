"""Returning a task to the previous step (退回上一步), where the process allows it.

The convention (bpmn/CONVENTIONS.md): a person task that carries
`<spiffworkflow:property name="allowReturn" value="true"/>` in its `spiffworkflow:properties` may, while
it is open, be sent back to the person task completed just before it on its path (its nearest completed
person-task ancestor in the same process or subprocess). That earlier task opens again with the data it
started with; everything after it on that path (the returned task, its timers, automatic steps in between)
is dropped. Case data keeps the fields recorded so far, and the earlier task's form overwrites them when it
is completed again. A first task, or one whose earlier step lies outside its own (sub)process, cannot be
returned; nor can a step just returned to, until it is completed again (the saved state keeps one completed
person step above the open ones, pruning.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from typing import Any

from SpiffWorkflow.util.task import TaskState

from .errors import Problem

RETURN_PROPERTY = "allowReturn"


def _flag(ts: Any) -> str | None:
    properties = (getattr(ts, "extensions", None) or {}).get("properties", {})
    value = properties.get(RETURN_PROPERTY)
    return None if value is None else str(value).strip().lower()


def returnable_tasks(task_specs: Iterable[Any]) -> frozenset[str]:
    """The ids of the tasks marked allowReturn="true"."""
    return frozenset(ts.bpmn_id for ts in task_specs if ts.bpmn_id and _flag(ts) == "true")


def return_problems(task_specs: Iterable[Any], person_tasks: tuple[type, ...], lines: dict[str, int]) -> list[Problem]:
    """allowReturn is "true" or "false", and only on a person task."""
    problems = []
    for ts in task_specs:
        flag = _flag(ts)
        if flag is None or not ts.bpmn_id:
            continue
        line = lines.get(ts.bpmn_id)
        if flag not in ("true", "false"):
            problems.append(Problem.of('allowReturn must be "true" or "false"', "allowReturn 只能是 true 或 false",
                                       ts.bpmn_id, line))
        elif not isinstance(ts, person_tasks):
            problems.append(Problem.of("allowReturn is only for user and manual tasks",
                                       "只有人工任务可以设置 allowReturn", ts.bpmn_id, line))
    return problems


def previous_person_task(task: Any) -> Any | None:
    """The person task completed just before `task` on its path, in the same (sub)process; None if none."""
    current = task.parent
    while current is not None and current.workflow is task.workflow:
        if current.state == TaskState.COMPLETED and current.task_spec.manual:
            return current
        current = current.parent
    return None


def reset_to(workflow: Any, previous: Any) -> None:
    """Open `previous` again with the data it started with, dropping what followed it on its path."""
    if previous.parent is None:  # the root of a state pruned before pruning kept what it hangs from
        _reset_root(workflow, previous)
    else:
        workflow.reset_from_task_id(previous.id, data=deepcopy(previous.parent.data))
    _forget_dropped_waits(workflow)


def _forget_dropped_waits(workflow: Any) -> None:
    """SpiffWorkflow's reset leaves the waiting events of the dropped tasks (e.g. the returned task's
    deadline timer) registered; refreshing timers would then touch tasks no longer in the tree."""
    for task in list(workflow.event_manager.tasks.values()):
        if task.workflow.tasks.get(task.id) is not task:
            workflow.event_manager.remove_task(task)


def _reset_root(workflow: Any, task: Any) -> None:
    """SpiffWorkflow's reset reads the task's parent; a root has none, so make it ready by hand (its own
    data kept, its boundary timers, if any, not armed again)."""
    task.internal_data = {}
    task._drop_children(force=True)
    task._set_state(TaskState.FUTURE)
    task.task_spec._predict(task, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
    task._set_state(TaskState.READY)
    workflow.last_task = task

