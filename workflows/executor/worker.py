"""A step executor: a separate process that runs engine operations, and with them designer code.

Started by the pool (`pool.py`) with an empty environment, no inherited descriptors and a working
directory of its own. It imports and warms up everything a step needs, confines itself for good
(`isolation.apply`), then serves requests on its pipes: one engine operation at a time, with
service-task calls relayed to the parent (which owns the database) over the same protocol.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from workflows.engine import CaseRunner, EngineError, Incident, ProcessDefinition, compile_process
from workflows.engine.sandbox import require_storable

from . import isolation
from .protocol import Channel, ChannelClosed, encode_error, encode_migration, encode_step, encode_steps, raised_of

WARMUP_BPMN = Path(__file__).with_name("warmup.bpmn")
WARMUP_DMN = Path(__file__).with_name("warmup.dmn")
SPEC_CACHE_SIZE = 64
CPU_RETIREMENT = 0.5  # retire after using this share of the CPU limit, before the kernel kills it


class GlueFailed(Exception):
    """The parent's service-task operation failed; the step's task becomes an incident."""


class Worker:
    """The request loop of one executor process."""

    def __init__(self, channel: Channel, limits: isolation.Limits) -> None:
        self.channel = channel
        self.limits = limits
        self.specs: dict[str, ProcessDefinition] = {}
        self.runners: dict[str, CaseRunner] = {}

    def serve(self) -> None:
        """Answer requests until the parent closes the pipe or the worker should retire."""
        while True:
            try:
                header, payload = self.channel.receive()
            except ChannelClosed:
                return
            retire = self._answer(header, payload)
            if retire:
                return

    def _answer(self, header: dict[str, Any], payload: bytes) -> bool:
        """Run one request and send its reply; True when this worker should retire afterwards."""
        out_of_memory = False
        try:
            reply, body = self._run(header, payload)
        except EngineError as exc:
            reply, body = encode_error(exc), b""
        except MemoryError:  # the heap may be fragmented or half-built structures kept: start afresh
            out_of_memory = True
            reply, body = encode_error(Incident("the step ran out of memory (步骤内存超限)")), b""
        except Exception as exc:  # a malformed request or an engine bug: report it, keep serving
            reply, body = encode_error(EngineError(f"the executor could not run the step: {exc!r}")), b""
        retire = out_of_memory or self._tired()
        self.channel.send({**reply, "retire": retire}, body)
        return retire

    def _tired(self) -> bool:
        used = resource.getrusage(resource.RUSAGE_SELF)
        return used.ru_utime + used.ru_stime > self.limits.cpu_seconds * CPU_RETIREMENT

    def _run(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        op, args = header.get("op"), header.get("args") or {}
        runner = self._runner(header.get("settings") or {})
        if op == "check_rule":
            return {"type": "result", "value": runner.check_rule(args["expression"], args["scope"])}, b""
        if op == "check_rules":
            return {"type": "result", "value": runner.check_rules(args["expressions"], args["scope"])}, b""
        if op == "select":
            return {"type": "result", "value": runner.select(args["expression"], args["scopes"])}, b""
        process = self._definition(header.get("spec") or {})
        state = payload.decode()
        handler = self._relay if header.get("relay") else None
        operations: dict[str, Callable[[], Any]] = {
            "start": lambda: runner.start(process, args["data"], handler),
            "complete": lambda: runner.complete(process, state, args["task_id"], args["data"], handler),
            "fire_timers": lambda: runner.fire_timers(process, state, handler),
            "deliver_message": lambda: runner.deliver_message(process, state, args["name"], args["data"], handler,
                                                              args.get("correlations")),
            "deliver_signal": lambda: runner.deliver_signal(process, state, args["name"], args["data"], handler),
            "resume_call": lambda: runner.resume_call(process, state, args["task_id"], args["outcome"], handler,
                                                      raised_of(args.get("raised", []))),
            "cancel": lambda: runner.cancel(process, state),
            "inspect": lambda: runner.inspect(process, state),
            "retry": lambda: runner.retry(process, state, handler),
            "return_task": lambda: runner.return_task(process, state, args["task_id"], handler),
            "extend": lambda: runner.extend(process, state, args["task_id"], str(args["until"])),
            "postpone": lambda: runner.postpone(process, state, str(args["element_id"]), float(args["seconds"])),
        }
        if op in operations:
            return _step_reply(operations[op]())
        if op == "start_many":
            header_out, body = encode_steps(runner.start_many(process, args["starts"], self._next_case))
            return {"type": "result", **header_out}, body
        if op == "timer_schedule":
            schedule = runner.timer_schedule(process)
            return {"type": "result", "value": asdict(schedule) if schedule is not None else None}, b""
        if op == "migrate":
            target = self._definition(header.get("target") or {})
            header_out, body = encode_migration(runner.migrate(process, state, target, bool(args["dry_run"])))
            return {"type": "result", **header_out}, body
        raise EngineError(f"unknown executor operation {op!r}")

    def _runner(self, settings: dict[str, Any]) -> CaseRunner:
        """A runner for the caller's deadlines and limits (the same few settings come again and again)."""
        key = json.dumps(settings, sort_keys=True)
        if key not in self.runners:
            if len(self.runners) >= SPEC_CACHE_SIZE:
                self.runners.pop(next(iter(self.runners)))
            today = settings.get("today")
            self.runners[key] = CaseRunner(settings.get("deadlines") or {}, float(settings.get("script_timeout", 1.0)),
                                           int(settings.get("max_depth", 800)),
                                           date.fromisoformat(today) if isinstance(today, str) else None)
        return self.runners[key]

    def _definition(self, spec: dict[str, Any]) -> ProcessDefinition:
        """The parsed process of a content hash, asking the parent for its files the first time."""
        content_hash = str(spec.get("hash"))
        if content_hash not in self.specs:
            self.channel.send({"type": "need_spec", "hash": content_hash})
            files, _ = self.channel.receive()
            if len(self.specs) >= SPEC_CACHE_SIZE:
                self.specs.pop(next(iter(self.specs)))
            self.specs[content_hash] = compile_process(
                str(files["key"]), str(files["bpmn"]).encode(),
                {str(name): str(text).encode() for name, text in files["dmns"].items()}, None)
        return self.specs[content_hash]

    def _next_case(self, item: int) -> Callable[[str, dict[str, Any], dict[str, Any]], Any]:
        """The relay of one case of a batch of starts, asked for as the case begins: the parent is told, and the
        case's time budget starts now."""
        self.channel.send({"type": "next_case", "item": item})
        return lambda name, params, data: self._relay(name, params, data, item)

    def _relay(self, name: str, params: dict[str, Any], data: dict[str, Any], item: int | None = None) -> Any:
        """A service task's call, answered by the parent's glue inside its transaction."""
        self.channel.send({"type": "glue", "name": name, "params": params, "data": data, "item": item})
        reply, _ = self.channel.receive()
        if reply.get("type") != "glue_result":
            raise GlueFailed(str(reply.get("message", "service task failed")))
        require_storable(reply.get("value"))
        return reply.get("value")


def _step_reply(step: Any) -> tuple[dict[str, Any], bytes]:
    fields, state = encode_step(step)
    return {"type": "result", **fields}, state


def warm_up() -> None:
    """Run a small process through every operation, so nothing is imported lazily once confined."""
    import _strptime  # noqa: F401 - datetime.strptime imports it on first use

    definition = compile_process("warmup", WARMUP_BPMN.read_bytes(), {WARMUP_DMN.name: WARMUP_DMN.read_bytes()},
                                 None)
    runner = CaseRunner({"warmup": "PT1H"})
    step = runner.start(definition, {"amount": 3}, lambda name, params, data: {"ok": True})
    step = runner.complete(definition, step.state, step.open_tasks[0].id, {"approve": True}, None)
    runner.fire_timers(definition, step.state, None)
    runner.diagram(definition, step.state)
    runner.check_rule("amount > 1", {"amount": 3})
    json.dumps(step.data)


def _protocol_descriptors() -> Channel:
    """Move the protocol off stdin/stdout, and point fds 0-2 at /dev/null (stray writes go nowhere)."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return Channel(read_fd, write_fd)


def main(argv: list[str]) -> None:
    """Entry point: `python -I -c BOOT <project root> <limits JSON>`."""
    limits = isolation.Limits(**json.loads(argv[0]))
    channel = _protocol_descriptors()
    warm_up()
    held = isolation.apply(limits)
    channel.send({"type": "ready", "isolation": held, "pid": os.getpid()})
    Worker(channel, limits).serve()
    sys.exit(0)
