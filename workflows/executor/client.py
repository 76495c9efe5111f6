"""`StepExecutor`: the engine operations of `CaseRunner`, each run in an isolated executor process.

This is the only way the service runs a case: it never builds or loads a workflow itself, so no
designer code (scripts, conditions, timers, DMN, assignees, form rules) can run in the service's
process, whichever command or request asks for a step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import date
from typing import Any, TypeVar

from workflows.engine import (
    Diagram,
    EngineError,
    Incident,
    Migration,
    ProcessDefinition,
    Step,
    Thrown,
    TimerSchedule,
)
from workflows.engine.sandbox import ServiceHandler, require_storable

from .pool import ExecutorPool, Relay
from .protocol import ProtocolViolation, decode_migration, decode_step, decode_steps

Answer = TypeVar("Answer")


class StepExecutor:
    """Runs engine operations in the pool's executors, within a time budget per step."""

    def __init__(self, pool: ExecutorPool, deadlines: Mapping[str, str], script_timeout: float = 1.0,
                 max_depth: int = 800, step_timeout: float = 2.0, today: Callable[[], date] = date.today,
                 max_state_kb: int = 2048) -> None:
        self.pool = pool
        self.step_timeout = step_timeout
        self.max_state_bytes = max_state_kb * 1024
        self.today = today  # the day scripts' today() names: the service's (county) date, sent with each step
        self._settings = {"deadlines": dict(deadlines), "script_timeout": script_timeout, "max_depth": max_depth}

    def _request_settings(self) -> dict[str, Any]:
        return {**self._settings, "today": self.today().isoformat()}

    def start(self, process: ProcessDefinition, data: dict[str, Any], services: ServiceHandler | None) -> Step:
        """Create a case from start data and run it to its first wait."""
        require_storable(data)
        return self._step("start", process, b"", {"data": data}, services)

    def start_many(self, process: ProcessDefinition, starts: list[dict[str, Any]],
                   services: list[ServiceHandler]) -> list[Step | EngineError]:
        """Start one case per start data in one round trip, each with its own service handler; each its step
        or the error that refused it. The step budget is per case: each case of the batch gets one from its
        beginning, never the ones left by the cases before it."""
        for data in starts:
            require_storable(data)
        request = {"op": "start_many", "spec": _spec_ref(process), "args": {"starts": starts}, "relay": True}

        def relay(name: str, params: dict[str, Any], data: dict[str, Any], item: int | None) -> Any:
            if item is None or not 0 <= item < len(services):
                raise LookupError("a service-task call for no case of this batch")
            return services[item](name, params, data)
        with self.pool.worker() as worker:
            results = worker.call({"type": "run", "settings": self._request_settings(), **request}, b"", relay,
                                  lambda content_hash: _files_of(process), self.step_timeout, decode_steps,
                                  cases=max(1, len(starts)))
        return [self._bounded(step, len(step.state.encode())) if isinstance(step, Step) else step for step in results]

    def complete(self, process: ProcessDefinition, state: str, task_id: str, data: dict[str, Any],
                 services: ServiceHandler | None) -> Step:
        """Complete a READY user task with validated form data."""
        require_storable(data)
        return self._step("complete", process, state.encode(), {"task_id": task_id, "data": data}, services)

    def fire_timers(self, process: ProcessDefinition, state: str, services: ServiceHandler | None) -> Step:
        """Fire every timer of the case that is due now."""
        return self._step("fire_timers", process, state.encode(), {}, services)

    def deliver_message(self, process: ProcessDefinition, state: str, name: str, payload: dict[str, Any],
                        services: ServiceHandler | None, correlations: tuple[str, ...] | None = None) -> Step:
        """Hand a message to the case; NotWaiting when nothing in it waits for that name."""
        require_storable(payload)
        args = {"name": name, "data": payload, "correlations": list(correlations) if correlations is not None else None}
        return self._step("deliver_message", process, state.encode(), args, services)

    def deliver_signal(self, process: ProcessDefinition, state: str, name: str, payload: Any,
                       services: ServiceHandler | None) -> Step:
        """Hand a signal to the case; NotWaiting when nothing in it waits for that name."""
        require_storable(payload)
        return self._step("deliver_signal", process, state.encode(), {"name": name, "data": payload}, services)

    def resume_call(self, process: ProcessDefinition, state: str, task_id: str, outcome: str | None,
                    services: ServiceHandler | None, raised: tuple[Thrown, ...] = ()) -> Step:
        """A call activity's child case has ended: the waiting call activity goes on with its outcome, or by the
        boundary event catching the error or escalation it ended with."""
        return self._step("resume_call", process, state.encode(), {
            "task_id": task_id, "outcome": outcome, "raised": [asdict(event) for event in raised]}, services)

    def return_task(self, process: ProcessDefinition, state: str, task_id: str,
                    services: ServiceHandler | None) -> Step:
        """Send an open task marked allowReturn back to the person step before it."""
        return self._step("return_task", process, state.encode(), {"task_id": task_id}, services)

    def extend(self, process: ProcessDefinition, state: str, task_id: str, until: str) -> Step:
        """Move the deadline timers on an open task's boundary to `until`, where that is later."""
        return self._step("extend", process, state.encode(), {"task_id": task_id, "until": until}, None)

    def postpone(self, process: ProcessDefinition, state: str, element_id: str, seconds: float) -> Step:
        """Move the waiting timers of `element_id` `seconds` later."""
        return self._step("postpone", process, state.encode(), {"element_id": element_id, "seconds": seconds}, None)

    def retry(self, process: ProcessDefinition, state: str, services: ServiceHandler | None) -> Step:
        """Run the failed elements of a case in an incident again."""
        return self._step("retry", process, state.encode(), {}, services)

    def cancel(self, process: ProcessDefinition, state: str) -> Step:
        """Cancel every open path of the case."""
        return self._step("cancel", process, state.encode(), {}, None)

    def inspect(self, process: ProcessDefinition, state: str) -> Step:
        """Read a case's current step without running anything."""
        return self._step("inspect", process, state.encode(), {}, None)

    def diagram(self, process: ProcessDefinition, state: str) -> Diagram:
        """The elements a case has completed and those it is at now."""
        return self.inspect(process, state).diagram

    def check_rule(self, expression: str, scope: dict[str, Any]) -> bool:
        """Evaluate a form rule (`x-validate`) over case data and submitted fields."""
        return self._call({"op": "check_rule", "args": {"expression": expression, "scope": scope}}, b"", None, {},
                          lambda header, _: bool(header.get("value")))

    def check_rules(self, expressions: list[str], scope: dict[str, Any]) -> list[bool]:
        """Evaluate a form's rules in one round trip and one step budget: they run while the case is locked, and a
        round trip each (a budget each, the case data sent each time) let a form of many slow rules hold it long."""
        return self._call({"op": "check_rules", "args": {"expressions": expressions, "scope": scope}}, b"", None, {},
                          lambda header, _: _booleans(header, len(expressions)))

    def select(self, expression: str, scopes: list[dict[str, Any]]) -> list[bool]:
        """Evaluate a filter over many records in one round trip (e.g. which cadres a start opens for)."""
        return self._call({"op": "select", "args": {"expression": expression, "scopes": scopes}}, b"", None, {},
                          lambda header, _: _booleans(header, len(scopes)))

    def timer_schedule(self, process: ProcessDefinition) -> TimerSchedule | None:
        """When the process's timer start event fires, or None when it has none."""
        return self._call({"op": "timer_schedule", "spec": _spec_ref(process), "args": {}}, b"", None,
                          _known(process), lambda header, _: _schedule(header.get("value")))

    def migrate(self, process: ProcessDefinition, state: str, target: ProcessDefinition,
                dry_run: bool) -> Migration:
        """Move a case to another version; refused when an open task would disappear."""
        request = {"op": "migrate", "spec": _spec_ref(process), "target": _spec_ref(target),
                   "args": {"dry_run": dry_run}}
        return self._call(request, state.encode(), None, _known(process, target), decode_migration)

    def _step(self, op: str, process: ProcessDefinition, state: bytes, args: dict[str, Any],
              services: ServiceHandler | None) -> Step:
        request = {"op": op, "spec": _spec_ref(process), "args": args, "relay": services is not None}
        relay = (lambda name, params, data, _item: services(name, params, data)) if services is not None else None
        step, size = self._call(request, state, relay, _known(process),
                                lambda header, body: (decode_step(header, body), len(body)))  # the body: the state
        return self._bounded(step, size)

    def _bounded(self, step: Step, size: int) -> Step:
        """The step, unless the state it would save (`size` bytes) is past the limit: designer code that grows
        case data without end would otherwise fill the database and every page listing the case. What it sends
        to other cases is held to the same limit: it is no part of the state, yet stored in the outbox and handed
        to every case waiting for it; so is the history it writes."""
        if size > self.max_state_bytes:
            raise Incident(f"the case's saved state would grow to {size // 1024} KB, more than the "
                           f"{self.max_state_bytes // 1024} KB allowed (MAX_CASE_STATE_KB) "
                           f"(案件数据将增至 {size // 1024} KB，超过上限 {self.max_state_bytes // 1024} KB)")
        sent = sum(len(json.dumps(event.payload)) for event in step.thrown)
        if sent > self.max_state_bytes:
            raise Incident(f"the messages and signals this step sends would hold {sent // 1024} KB, more than the "
                           f"{self.max_state_bytes // 1024} KB allowed (MAX_CASE_STATE_KB) "
                           f"(本步骤发送的消息与信号数据达 {sent // 1024} KB，"
                           f"超过上限 {self.max_state_bytes // 1024} KB)")
        # Nor is its history: each automatic element's entry holds the data it changed, so a loop overwriting one
        # large value keeps the state small and writes that value once per pass into a history nobody may trim.
        written = sum(len(json.dumps(event.detail)) for event in step.events if event.detail)
        if written > self.max_state_bytes:
            raise Incident(f"the history this step writes would hold {written // 1024} KB, more than the "
                           f"{self.max_state_bytes // 1024} KB allowed (MAX_CASE_STATE_KB) "
                           f"(本步骤写入的案件历史达 {written // 1024} KB，超过上限 {self.max_state_bytes // 1024} KB)")
        return step

    def _call(self, request: dict[str, Any], payload: bytes, services: Relay | None,
              specs: dict[str, ProcessDefinition], decode: Callable[[dict[str, Any], bytes], Answer]) -> Answer:
        def spec_files(content_hash: str) -> dict[str, Any]:
            return _files_of(specs[content_hash])
        with self.pool.worker() as worker:
            return worker.call({"type": "run", "settings": self._request_settings(), **request}, payload, services,
                               spec_files, self.step_timeout, decode)


def _booleans(header: dict[str, Any], count: int) -> list[bool]:
    """A list of `count` answers (rules, a selection), each taken as true or false."""
    value = header.get("value")
    if not isinstance(value, list) or len(value) != count:
        raise ProtocolViolation("malformed list of answers")
    return [bool(each) for each in value]


def _schedule(value: Any) -> TimerSchedule | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("first"), str) \
            or not isinstance(value.get("interval"), str | None) \
            or not isinstance(value.get("repetitions"), int | None):
        raise ProtocolViolation("malformed schedule")
    return TimerSchedule(value["first"], value.get("interval"), value.get("repetitions"))


def _spec_ref(process: ProcessDefinition) -> dict[str, str]:
    return {"hash": process.content_hash, "key": process.key}


def _known(*processes: ProcessDefinition) -> dict[str, ProcessDefinition]:
    return {process.content_hash: process for process in processes}


def _files_of(process: ProcessDefinition) -> dict[str, Any]:
    sources = process.sources
    return {"hash": process.content_hash, "key": process.key, "bpmn": sources.bpmn.decode(),
            "dmns": {name: content.decode() for name, content in sources.dmns.items()}}
