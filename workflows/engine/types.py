"""Plain frozen values the engine adapter hands to the rest of CadreFlow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OpenTask:
    """A user task waiting for a person."""

    id: str
    element_id: str
    name: str
    role: str | None
    assignee: str | None
    due_at: str | None  # ISO 8601 UTC: when its boundary timer fires
    supervises: str | None = None  # for supervise_<x> tasks, the element id x


EVENT_ACTIONS = frozenset({"automatic", "timer", "message", "escalation", "end"})


@dataclass(frozen=True)
class EngineEvent:
    """Something the engine did by itself during a step (for the case history)."""

    action: str  # "automatic" | "timer" | "message" | "escalation" | "end"
    element_id: str
    name: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Diagram:
    """Which elements of the diagram a case has passed and where it stands."""

    completed: tuple[str, ...]
    active: tuple[str, ...]


@dataclass(frozen=True)
class TimerSchedule:
    """When a process's timer start event fires: first, then every `interval` seconds `repetitions` times
    more (None: without end); `interval` None for a start that fires once."""

    first: str  # ISO 8601, UTC
    interval: str | None = None  # ISO 8601 duration (P1Y, P1M, PT12H)
    repetitions: int | None = None


@dataclass(frozen=True)
class Wait:
    """A message or signal an open case waits for; correlations are "key=value" (canonical JSON) texts."""

    kind: str  # "message" | "signal"
    name: str
    correlations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Thrown:
    """A message or signal a step threw that no element of its own case caught: for other cases (or an error or
    escalation, for the caller of a called case: `name` its code)."""

    kind: str  # "message" | "signal" (Step.thrown); "error" | "escalation" (Step.raised)
    name: str
    payload: Any = None
    correlations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """The state of a case after an engine operation."""

    state: str  # serialized workflow, without its spec
    completed: bool
    outcome: str | None
    data: dict[str, Any]
    open_tasks: tuple[OpenTask, ...]
    next_timer_due: str | None
    events: tuple[EngineEvent, ...]
    overdue_elements: tuple[str, ...] = ()
    incident: IncidentInfo | None = None  # the failure this step ran into
    failed_elements: tuple[str, ...] = ()  # elements still failed (an incident not yet retried)
    diagram: Diagram = Diagram((), ())  # elements passed and current, for the case's diagram
    waits: tuple[Wait, ...] = ()  # messages and signals the case now waits for
    thrown: tuple[Thrown, ...] = ()  # messages and signals the step threw for other cases
    raised: tuple[Thrown, ...] = ()  # errors and escalations the step threw that its case did not catch
    calls: tuple[str, ...] = ()  # ids of the call activity tasks now waiting for their child case
    # Ids of the call activity tasks that waited for their child case before the step and no longer do (left by a
    # return, a cancel, an interrupting event, a terminate end): their child cases have nobody waiting for them.
    left_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncidentInfo:
    """Where and why an automatic step failed; the case is saved at that element."""

    message: str
    element_id: str | None
    line: int | None
    retryable: bool = False  # a service task failed: the outside world may answer on a later try


@dataclass(frozen=True)
class VersionDiff:
    """Elements added, removed and changed between two versions of a process."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Migration:
    """What moving a case to another version does: tasks dropped and changed, and the new step."""

    removed: tuple[str, ...]
    changed: tuple[str, ...]
    step: Step | None
