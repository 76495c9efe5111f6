"""Helpers for the engine tests: compiling the shipped processes, a fake service handler, a Driver."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from workflows.engine import CaseRunner, Incident, OpenTask, ProcessDefinition, Step, compile_process
from workflows.engine.compiler import decision_ids, referenced_decisions

ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = ROOT / "bpmn"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
LANE_ROLES = ("org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head")
ROLES = (*LANE_ROLES, "designer", "admin")
PROCESS_KEYS = ("pre_appointment_vetting", "admonishment", "departure_audit", "accountability")
DEADLINE_KEYS = ("public_notice", "inquiry_reply", "rectification", "audit_fieldwork",
                 "preliminary_verification", "investigation", "review", "disclosure")
SLOW = "P30D"
FAST_SECONDS = 0.2  # a fast deadline's length
TIMER_MARGIN = 0.1  # how long past a fast deadline a driver sleeps before it fires timers
TODAY = "2026-11-29"
CADRE_FACTS = {"promotion_ban_until": "", "today": TODAY, "open_accountability": False, "latest_grade": ""}


def dmn_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(BPMN_DIR.glob("*.dmn"))}


def compile_file(path: Path, key: str | None = None, roles: tuple[str, ...] = ROLES) -> ProcessDefinition:
    """Compile a BPMN file with the DMN files (beside the shipped BPMN) it calls."""
    bpmn = path.read_bytes()
    wanted = referenced_decisions(bpmn)
    dmns = {name: content for name, content in dmn_files().items() if decision_ids(content) & wanted}
    return compile_process(key or path.stem, bpmn, dmns, roles)


class FakeServices:
    """A recording service handler standing in for workflows/glue."""

    def __init__(self, facts: dict[str, Any] | None = None) -> None:
        self.facts = {**CADRE_FACTS, **(facts or {})}
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def __call__(self, operation: str, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, dict(params), json.loads(json.dumps(data))))
        results = {
            "cadre_facts": lambda: dict(self.facts),
            "appoint": lambda: {"post": data.get("proposed_post")},
            "post_change_facts": lambda: {"audit_required": False, "post": "副局长", "today": TODAY},
            "depart": lambda: {"post": ""},
            "record_cleared_audit": lambda: {"cleared_on": TODAY},
            "apply_sanction": lambda: {"sanction": data.get("final_sanction"), "promotion_ban_until": "2027-05-29"},
            "start_accountability": lambda: {"process": "accountability"},
            "start_departure_audit": lambda: {"process": "departure_audit"},
        }
        return results.get(operation, dict)()

    def operations(self) -> list[str]:
        return [operation for operation, _params, _data in self.calls]

    def params_of(self, operation: str) -> list[dict[str, Any]]:
        return [params for op, params, _data in self.calls if op == operation]

    def data_of(self, operation: str) -> list[dict[str, Any]]:
        return [data for op, _params, data in self.calls if op == operation]


def deadlines(fast: tuple[str, ...] = (), seconds: float = FAST_SECONDS) -> dict[str, str]:
    return {key: f"PT{seconds:g}S" if key in fast else SLOW for key in DEADLINE_KEYS}


def check_round_trip(runner: CaseRunner, definition: ProcessDefinition, step: Step) -> None:
    """The saved state loads back to the same open tasks, data and completion."""
    assert json.loads(step.state)  # plain JSON
    json.dumps(step.data)  # case data is JSON-safe
    loaded = runner.inspect(definition, step.state)
    assert sorted(t.id for t in loaded.open_tasks) == sorted(t.id for t in step.open_tasks)
    assert sorted((t.element_id, t.role, t.assignee) for t in loaded.open_tasks) == \
        sorted((t.element_id, t.role, t.assignee) for t in step.open_tasks)
    assert loaded.data == step.data
    assert (loaded.completed, loaded.outcome) == (step.completed, step.outcome)
    assert loaded.next_timer_due == step.next_timer_due


class Driver:
    """Drives one case of a definition step by step, checking a save/load round trip each time."""

    def __init__(self, definition: ProcessDefinition, *, fast: tuple[str, ...] = (), fast_seconds: float = FAST_SECONDS,
                 facts: dict[str, Any] | None = None, max_depth: int = 800, script_timeout: float = 1.0) -> None:
        """`fast` deadlines last `fast_seconds`: longer where a step must surely land before one passes."""
        self.definition = definition
        self.runner = CaseRunner(deadlines(fast, fast_seconds), script_timeout=script_timeout, max_depth=max_depth)
        self.timer_wait = fast_seconds + TIMER_MARGIN
        self.services = FakeServices(facts)
        self.step: Step | None = None
        self.steps: list[Step] = []

    # Operations ---------------------------------------------------------------------------------

    def start(self, **data: Any) -> Step:
        return self._keep(self.runner.start(self.definition, data, self.services))

    def complete(self, element_id: str, **data: Any) -> Step:
        task = self.task(element_id)
        return self._keep(self.runner.complete(self.definition, self.state, task.id, data, self.services))

    def complete_id(self, task_id: str, **data: Any) -> Step:
        return self._keep(self.runner.complete(self.definition, self.state, task_id, data, self.services))

    def fire_timers(self) -> Step:
        return self._keep(self.runner.fire_timers(self.definition, self.state, self.services))

    def wait_and_fire(self) -> Step:
        """Sleep until the fast timers are due, then fire them."""
        time.sleep(self.timer_wait)
        return self.fire_timers()

    def message(self, name: str, **payload: Any) -> Step:
        return self._keep(self.runner.deliver_message(self.definition, self.state, name, payload, self.services))

    def cancel(self) -> Step:
        return self._keep(self.runner.cancel(self.definition, self.state))

    def resume(self, step: Step) -> Step:
        """Continue from a step reached earlier (states are plain strings)."""
        return self._keep(step)

    # Reading ------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        assert self.step is not None, "start the case first"
        return self.step.state

    def events(self) -> list[Any]:
        """Every engine event of the case so far: on a slow machine a fast timer may fire in the step before."""
        return [event for step in self.steps for event in step.events]

    def open_ids(self) -> list[str]:
        """Element ids of the open user tasks, sorted (a task open twice appears twice)."""
        assert self.step is not None
        return sorted(t.element_id for t in self.step.open_tasks)

    def tasks(self, element_id: str) -> list[OpenTask]:
        assert self.step is not None
        return [t for t in self.step.open_tasks if t.element_id == element_id]

    def task(self, element_id: str) -> OpenTask:
        found = self.tasks(element_id)
        assert len(found) == 1, f"{element_id} open {len(found)} times; open: {self.open_ids()}"
        return found[0]

    @property
    def data(self) -> dict[str, Any]:
        assert self.step is not None
        return self.step.data

    def _keep(self, step: Step) -> Step:
        check_round_trip(self.runner, self.definition, step)
        if not step.completed:
            assert step.outcome is None
        self.step = step
        self.steps.append(step)
        return step


def incident_of(action: Any) -> tuple[Any, Step | None]:
    """Run an engine call that must fail: the incident it raised, or the one its step reports.

    Returns (incident, step): the step is None when the engine refused the step by raising.
    """
    try:
        step = action()
    except Incident as exc:
        return exc, None
    incident = getattr(step, "incident", None)
    assert incident is not None, f"expected an incident; open tasks: {[t.element_id for t in step.open_tasks]}"
    return incident, step
