"""Run BPMN scripts and expressions in a RestrictedPython sandbox with time and memory limits.

SpiffWorkflow's default environment hands every script, condition, timer and DMN entry to
plain `exec`/`eval`: an uploaded diagram could run `__import__('os').system(...)`. Here every
piece of code is compiled with RestrictedPython (no imports, no dunder attributes, guarded
writes), compiled code is cached by source text, `*`, `**` and `<<` go through size guards, and a
trace function stops runaway loops and scripts whose memory grows past a bound.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import re
import resource
import sys
import time
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from typing import Any, ClassVar

from RestrictedPython import (  # type: ignore[attr-defined]  # re-exported without __all__
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
    safe_builtins,
)
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from .errors import DataRefused, EngineError, ScriptRefused, ScriptTimeout
from .specs import CALL_OPERATION

MAX_RANGE = 100_000
MAX_ITEMS = 1_000_000  # characters or elements one `*` may build
MAX_BITS = 1 << 16  # size of an integer one `**` or `<<` may build
MAX_MEMORY_GROWTH_KB = 256 * 1024  # peak RSS a script may add before it is stopped
_FORBIDDEN_NAMES = frozenset({"open", "compile", "input", "breakpoint", "globals", "locals", "vars", "exec",
                              "eval", "memoryview", "help", "exit", "quit"})
RESERVED_KEY = "typename"  # SpiffWorkflow's serializer reads any dict with this key as an object
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "format", "format_map"})
ServiceHandler = Callable[[str, dict[str, Any], dict[str, Any]], Any]


class _GuardingPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus size guards on `*`, `**`, `<<` and no format specs."""

    _GUARDS: ClassVar[dict[type, str]] = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_",
                                          ast.Mod: "_mod_"}

    def visit_BinOp(self, node: ast.BinOp) -> Any:  # noqa: N802 - ast visitor naming
        node = self.node_contents_visit(node)
        guard = self._GUARDS.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(id=guard, ctx=ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_Import(self, node: ast.Import) -> Any:  # noqa: N802 - ast visitor naming
        self.error(node, "imports are not allowed")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:  # noqa: N802 - ast visitor naming
        self.error(node, "imports are not allowed")
        return node

    def visit_Name(self, node: ast.Name) -> Any:  # noqa: N802 - ast visitor naming
        if node.id in _FORBIDDEN_NAMES:
            self.error(node, f'"{node.id}" is not available in scripts')
        return super().visit_Name(node)

    def visit_Try(self, node: ast.Try) -> Any:  # noqa: N802 - ast visitor naming
        # A script that could catch exceptions could catch its own time limit and keep running.
        self.error(node, "try/except is not allowed in scripts: a failure becomes an incident "
                         "(脚本中不允许 try/except)")
        return node

    visit_TryStar = visit_Try  # type: ignore[assignment]  # noqa: N815 - ast visitor naming

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:  # noqa: N802 - ast visitor naming
        if node.format_spec is not None:
            self.error(node, "format specifications in f-strings are not allowed")
        return self.node_contents_visit(node)


def _mul(left: Any, right: Any) -> Any:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_ITEMS:
            raise ScriptRefused(f"a value larger than {MAX_ITEMS} items is not allowed")
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_BITS:
        raise ScriptRefused(f"an integer larger than {MAX_BITS} bits is not allowed")
    return left * right


def _pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    integers = isinstance(base, int) and isinstance(exponent, int)
    if modulus is None and integers and abs(base) > 1 and exponent > 0 \
            and exponent * math.log2(abs(base)) > MAX_BITS:
        raise ScriptRefused(f"an integer larger than {MAX_BITS} bits is not allowed")
    return pow(base, exponent, modulus)


def _mod(left: Any, right: Any) -> Any:
    """`%` formatting may not ask for huge or computed widths ('%0*d' % (10**9, 1), '%(a)0999999999d')."""
    if isinstance(left, str | bytes) and _too_wide(left if isinstance(left, str) else left.decode("latin-1")):
        raise ScriptRefused("%-format widths of 10000 or more, or *, are not allowed")
    return left % right


_MAX_WIDTH_DIGITS = 4  # widths and precisions up to 9999


def _too_wide(text: str) -> bool:
    """Whether a %-format asks for a width or precision of `*` or 10000 or more, read as `%` reads it: an
    optional `(key)` (parentheses nest), flags, width, `.precision`."""
    at = text.find("%")
    while at != -1:
        at += 1
        if text.startswith("(", at):
            at = _after_key(text, at)
        while at < len(text) and text[at] in "-#0 +":
            at += 1
        for _part in ("width", "precision"):
            digits = at
            while at < len(text) and text[at].isdigit():
                at += 1
            if text.startswith("*", at) or at - digits > _MAX_WIDTH_DIGITS:
                return True
            if not text.startswith(".", at):
                break
            at += 1
        at = text.find("%", at + 1 if text.startswith("%", at) else at)
    return False


def _after_key(text: str, at: int) -> int:
    """The index after a mapping key's closing parenthesis (nesting counted, as `%` does)."""
    depth = 0
    for index in range(at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index + 1
    return len(text)


def _lshift(value: Any, shift: Any) -> Any:
    if isinstance(shift, int) and shift > MAX_BITS:
        raise ScriptRefused(f"an integer larger than {MAX_BITS} bits is not allowed")
    return value << shift


def _getattr(obj: Any, name: str, default: Any = None) -> Any:
    # Through the type too: str.center('a', 10**9) pads as much as 'a'.center(10**9).
    text_type = isinstance(obj, type) and issubclass(obj, str | bytes)
    if (text_type or isinstance(obj, str | bytes)) and name in _PADDING_METHODS:
        raise ScriptRefused(f"str.{name} is not allowed (it can build unbounded strings)")
    if default is not None:
        return safer_getattr(obj, name, default)  # type: ignore[no-untyped-call]
    return safer_getattr(obj, name)  # type: ignore[no-untyped-call]


def _limited_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise ScriptRefused(f"range() longer than {MAX_RANGE}")
    return result


def _inplacevar(op: str, left: Any, right: Any) -> Any:
    operations = {"+=": lambda: left + right, "-=": lambda: left - right,
                  "*=": lambda: _mul(left, right), "/=": lambda: left / right,
                  "//=": lambda: left // right, "%=": lambda: _mod(left, right)}
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
        zip=zip, map=map, filter=filter, pow=_pow,
    )
    return {
        "__builtins__": builtins,
        "_getattr_": _getattr,
        "_mul_": _mul,
        "_pow_": _pow,
        "_mod_": _mod,
        "_lshift_": _lshift,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
    }


CLOCK_EVERY = 16  # instructions of designer code between two reads of the CPU clock (256 is a multiple of it)

# The file name of compiled designer code: RestrictedPython's default, which SpiffWorkflow's error reports look for
# to name the failing line.
DESIGNER_CODE = "<string>"


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    """Compile an expression under RestrictedPython, or raise ScriptRefused."""
    try:
        result = compile_restricted_eval(source.strip(), policy=_GuardingPolicy)
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ScriptRefused(f"expression too deeply nested or too large ({type(exc).__name__})") from None
    if result.errors:
        raise ScriptRefused("; ".join(result.errors))
    return result.code


@lru_cache(maxsize=1024)
def compile_script(source: str) -> Any:
    """Compile a script under RestrictedPython, or raise ScriptRefused."""
    try:
        result = compile_restricted_exec(source, policy=_GuardingPolicy)
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ScriptRefused(f"script too deeply nested or too large ({type(exc).__name__})") from None
    if result.errors:
        raise ScriptRefused("; ".join(result.errors))
    return result.code


@lru_cache(maxsize=4096)
def _reads_attributes(source: str) -> bool:
    """Whether an expression reaches any attribute. Without one it calls only the sandbox's builtins, none of
    which changes its arguments, so it may read case data uncopied (a DMN table evaluates one per cell)."""
    return any(isinstance(node, ast.Attribute) for node in ast.walk(ast.parse(source.strip(), mode="eval")))


def _is_data(name: str, value: Any, reserved: Mapping[str, Any]) -> bool:
    return not (name.startswith("_") or name in reserved or callable(value))


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluate and execute case code under RestrictedPython within a time limit."""

    def __init__(self, deadlines: Mapping[str, str], timeout: float, today: date | None = None) -> None:
        globals_ = _base_globals()
        globals_["deadline"] = self._deadline_reader(dict(deadlines))
        globals_["today"] = (lambda: today.isoformat()) if today is not None else lambda: date.today().isoformat()
        super().__init__(globals_)
        self.timeout = timeout

    @staticmethod
    def _deadline_reader(deadlines: dict[str, str]) -> Callable[[str], str]:
        def deadline(key: str) -> str:
            if key not in deadlines:
                raise KeyError(f"no deadline configured for {key!r}")
            return deadlines[key]
        return deadline

    def evaluate(self, expression: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> Any:
        code = compile_expression(expression)
        given = {**context, **(external_context or {})}
        if _reads_attributes(expression):  # only a method (d.update, list.append) can change data in place
            given = copy.deepcopy(given)
        scope = {**given, **self.globals}
        return self._within_time_limit(lambda: eval(code, scope))

    def execute(self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> bool:
        code = compile_script(script)
        scope = {**copy.deepcopy(context), **(external_context or {}), **self.globals}
        self._within_time_limit(lambda: exec(code, scope))
        reserved = {**self.globals, **(external_context or {})}
        result = {k: v for k, v in scope.items() if _is_data(k, v, reserved)}
        require_json(result)
        context.clear()
        context.update(result)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        raise ScriptRefused("service tasks need a service handler")

    def _within_time_limit(self, run: Callable[[], Any]) -> Any:
        # The thread's CPU time, not the wall clock: a script that waited for a core on a busy machine (or for a
        # garbage collection) is not the designer's loop.
        deadline = time.thread_time() + self.timeout
        memory_limit = _peak_rss_kb() + MAX_MEMORY_GROWTH_KB
        events = [0]

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename != DESIGNER_CODE:
                # Not the designer's code (a guard, a garbage collector's callback run meanwhile): never stopped
                # inside it, where the error would be swallowed or leave a library half done; the designer's next
                # instruction is.
                return None
            frame.f_trace_opcodes = True  # a one-line `while True: pass` emits no line events
            events[0] += 1
            if events[0] % CLOCK_EVERY:
                return tracer
            if time.thread_time() > deadline:  # a system call, unlike the wall clock: read every few instructions
                raise ScriptTimeout(f"script ran longer than {self.timeout:g} s")
            if events[0] % 256 == 0 and _peak_rss_kb() > memory_limit:
                raise ScriptRefused("script used too much memory")
            return tracer

        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            return run()
        except Exception:
            raise
        except BaseException as exc:  # SystemExit and its kin would pass every `except Exception` out of the step
            raise ScriptRefused(f"raising {type(exc).__name__} is not allowed in scripts") from None
        finally:
            sys.settrace(previous)


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def require_json(data: dict[str, Any]) -> None:
    """Refuse (ScriptRefused) data designer code produced that a case cannot store."""
    require_storable(data, ScriptRefused)
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ScriptRefused(f"data that is not JSON (数据不是 JSON): {exc}") from exc


MAX_STORED_INT = 2**63  # beyond, an integer is no count or amount of a case (and 10**5000 cannot even be printed)
MAX_DATA_DEPTH = 64  # nesting of lists and objects; loading a saved case recurses once per level
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL text refuses it), lone surrogates (no UTF-8)


def require_storable(data: Any, refusal: type[EngineError] = DataRefused) -> None:
    """Refuse what JSON would take but the saved case or the API could not: the serializer's reserved key (it
    reads such a dict as one of its objects, and the case never loads again), integers past MAX_STORED_INT,
    NaN and infinities (no JSON), NUL and lone surrogates, nesting past MAX_DATA_DEPTH. Walked without
    recursion; other types (a date, a set) are left to the JSON encoder."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        problem = _unstorable(value, depth)
        if problem is not None:
            raise refusal(problem)
        if isinstance(value, dict):
            pending += [(key, depth) for key in value] + [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list | tuple):
            pending += [(item, depth + 1) for item in value]


def _unstorable(value: Any, depth: int) -> str | None:
    if isinstance(value, dict | list | tuple) and depth >= MAX_DATA_DEPTH:
        return f"data nested deeper than {MAX_DATA_DEPTH} levels (数据嵌套超过 {MAX_DATA_DEPTH} 层)"
    if isinstance(value, dict) and RESERVED_KEY in value:
        return f"data may not use the key '{RESERVED_KEY}' (不能使用保留字段 {RESERVED_KEY})"
    if isinstance(value, int) and not -MAX_STORED_INT < value < MAX_STORED_INT:
        return f"an integer of {value.bit_length()} bits is too large to store (整数过大，无法保存)"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN and infinite numbers cannot be stored (不能保存 NaN 或无穷大)"
    if isinstance(value, str) and _UNSTORABLE_TEXT.search(value):
        return "text with a NUL character or a lone surrogate cannot be stored (文本含有无法保存的字符)"
    return None


class CaseScriptEngine(PythonScriptEngine):
    """The script engine of one step: the sandbox plus this step's service handler."""

    def __init__(self, environment: SandboxEnvironment, services: ServiceHandler | None) -> None:
        super().__init__(environment=environment)
        self.services = services

    def start_call(self, task: Any, process: str) -> None:
        """Ask the service to open the called process as a linked child case of this case."""
        if self.services is None:
            raise ScriptRefused(f"no service handler to start {process}")
        self.services(CALL_OPERATION, {"process": process, "task_id": str(task.id)}, dict(task.data))

    def call_service(self, task: Any, operation_name: str, operation_params: dict[str, Any]) -> str:
        if self.services is None:
            raise ScriptRefused(f"no service handler for {operation_name}")
        params = {name: spec["value"] for name, spec in operation_params.items()}
        result = self.services(operation_name, params, dict(task.data))
        require_storable(result)
        return json.dumps(result if result is not None else {})
