"""Run BPMN scripts and expressions in a RestrictedPython sandbox with a time limit.

SpiffWorkflow's default environment hands every script, condition, timer and DMN entry to
plain `exec`/`eval`: an uploaded diagram could run `__import__('os').system(...)`. Here every
piece of code is compiled with RestrictedPython (no imports, no dunder attributes, guarded
writes), compiled code is cached by source text, and a trace function stops runaway loops.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from .errors import ScriptRefused, ScriptTimeout

MAX_RANGE = 100_000
ServiceHandler = Callable[[str, dict[str, Any], dict[str, Any]], Any]


def _limited_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise ScriptRefused(f"range() longer than {MAX_RANGE}")
    return result


def _inplacevar(op: str, left: Any, right: Any) -> Any:
    operations = {"+=": lambda: left + right, "-=": lambda: left - right,
                  "*=": lambda: left * right, "/=": lambda: left / right,
                  "//=": lambda: left // right, "%=": lambda: left % right}
    if op not in operations:
        raise ScriptRefused(f"operator {op} is not allowed")
    return operations[op]()


def _base_globals() -> dict[str, Any]:
    builtins = dict(safe_builtins)
    for name in ("setattr", "delattr", "__build_class__", "id", "hash"):
        builtins.pop(name, None)
    builtins.update(
        range=_limited_range, dict=dict, list=list, set=set, tuple=tuple, min=min, max=max,
        sum=sum, any=any, all=all, enumerate=enumerate, sorted=sorted, reversed=reversed,
        zip=zip, map=map, filter=filter,
    )
    return {
        "__builtins__": builtins,
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
        "today": lambda: date.today().isoformat(),
    }


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Compile an expression under RestrictedPython, or raise ScriptRefused."""
    result = compile_restricted_eval(source.strip())
    if result.errors:
        raise ScriptRefused("; ".join(result.errors))
    return result.code


@lru_cache(maxsize=1024)
def compile_script(source: str) -> Any:
    """Compile a script under RestrictedPython, or raise ScriptRefused."""
    result = compile_restricted_exec(source)
    if result.errors:
        raise ScriptRefused("; ".join(result.errors))
    return result.code


def _is_data(name: str, value: Any, reserved: Mapping[str, Any]) -> bool:
    return not (name.startswith("_") or name in reserved or callable(value))


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluate and execute case code under RestrictedPython within a time limit."""

    def __init__(self, deadlines: Mapping[str, str], timeout: float) -> None:
        globals_ = _base_globals()
        globals_["deadline"] = self._deadline_reader(dict(deadlines))
        super().__init__(globals_)
        self.timeout = timeout

    @staticmethod
    def _deadline_reader(deadlines: dict[str, str]) -> Callable[[str], str]:
        def deadline(key: str) -> str:
            if key not in deadlines:
                raise KeyError(f"no deadline configured for {key!r}")
            return deadlines[key]
        return deadline

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        code = compile_expression(expression)
        scope = {**context, **(external_context or {}), **self.globals}
        return self._within_time_limit(lambda: eval(code, scope))

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        code = compile_script(script)
        scope = {**copy.deepcopy(context), **(external_context or {}), **self.globals}
        self._within_time_limit(lambda: exec(code, scope))
        reserved = {**self.globals, **(external_context or {})}
        result = {k: v for k, v in scope.items() if _is_data(k, v, reserved)}
        _require_json(result)
        context.clear()
        context.update(result)
        return True

    def call_service(self, context: dict, **kwargs: Any) -> str:
        raise ScriptRefused("service tasks need a service handler")

    def _within_time_limit(self, run: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.timeout

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            if time.monotonic() > deadline:
                raise ScriptTimeout(f"script ran longer than {self.timeout:g} s")
            return tracer

        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            return run()
        finally:
            sys.settrace(previous)


def _require_json(data: dict) -> None:
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ScriptRefused(f"script produced data that is not JSON: {exc}") from exc


class CaseScriptEngine(PythonScriptEngine):
    """The script engine of one step: the sandbox plus this step's service handler."""

    def __init__(self, environment: SandboxEnvironment, services: ServiceHandler | None) -> None:
        super().__init__(environment=environment)
        self.services = services

    def call_service(self, task: Any, operation_name: str, operation_params: dict) -> str:
        if self.services is None:
            raise ScriptRefused(f"no service handler for {operation_name}")
        params = {name: spec["value"] for name, spec in operation_params.items()}
        result = self.services(operation_name, params, dict(task.data))
        return json.dumps(result if result is not None else {})
