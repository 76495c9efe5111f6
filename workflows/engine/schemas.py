"""Form schemas (JSON Schema) from designers, made safe to accept and to validate with.

jsonschema by default follows a `$ref` to `http://` and `file://` addresses and matches `pattern`
and `patternProperties` (also where `additionalProperties` and `unevaluatedProperties` ask which names they
take) with Python's backtracking `re`. Here nothing is ever fetched (a registry without retrieval; a
`$ref` that is not local is refused at deploy) and patterns run on RE2, which is linear in the
input, so no pattern can stall the service (one RE2 cannot compile is refused at deploy).

A `$ref` must be a JSON pointer into the form itself ("#/$defs/x") that leads to a schema and never back
into one containing it (a loop recurses without end on the same data), and keywords that move where a
`$ref` resolves or which validator runs (`$id`, anchors, `$dynamicRef`, a `$schema` below the root, which
would swap in jsonschema's own validator with Python's `re`) are refused. `expanded_size` counts what
validation may walk with every `$ref` expanded in place, so deploy can bound it (DEPLOY_LIMITS.max_form_nodes):
a few `$defs` that each refer twice to the next would otherwise cost 2**n.

Validation runs in the service process (a person's completion, a start, a call activity's child form inside a
step), not in the executors, so it gets a time limit of its own: `form_errors` stops once it is past, checked at
each keyword and at each name matched against a pattern (one keyword matches every name against every pattern).
Node counts do not bound it: nested `unevaluatedProperties` re-walk their subschemas at every level (2**n in a form
of a few dozen nodes), and the data has no size of its own but the request's. `uniqueItems`
compares in linear time (jsonschema compares every pair of objects: 2,000 of them took 14 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from time import thread_time
from typing import Any
from urllib.parse import unquote

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema_specifications import REGISTRY as METASCHEMAS
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from .errors import FormCheckTimeout

_NO_RETRIEVAL: Registry = Registry()  # knows no resource and retrieves none: a remote $ref is unresolvable
_FORMATS = FormatChecker(formats=("date",))
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")
# Keywords that change the base a `$ref` resolves against or name a target other than a JSON pointer.
_SCOPE_KEYWORDS = ("$id", "$anchor", "$dynamicAnchor", "$dynamicRef")
MAX_PATTERN_CHARS = 1000
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the designer, not logged to stderr


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """An RE2 pattern, or ValueError when RE2 cannot take it (backreferences, lookaround, too big)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(reason) from None


def _pattern(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Validator, patterns: dict[str, Any], instance: Any,
                        schema: dict[str, Any]) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        compiled = compile_pattern(pattern)
        for name, value in instance.items():
            _spend()  # every name against every pattern, inside this one keyword's check
            if compiled.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _matcher(patterns: Any) -> Callable[[str], bool]:
    """Whether a name matches any of `patternProperties`' patterns, each match counted toward the time limit."""
    compiled = [compile_pattern(pattern) for pattern in patterns] if isinstance(patterns, dict) else []

    def matched(name: str) -> bool:
        for pattern in compiled:
            _spend()
            if pattern.search(name):
                return True
        return False
    return matched


def _additional_properties(validator: Validator, extra: Any, instance: Any,
                           schema: dict[str, Any]) -> Iterator[ValidationError]:
    """jsonschema's `additionalProperties`, the names `patternProperties` takes matched on RE2: its own matches
    them with Python's backtracking `re`, inside one keyword check the time limit never sees."""
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties")
    known = known if isinstance(known, dict) else {}
    matched = _matcher(schema.get("patternProperties"))
    extras = sorted((name for name in instance if name not in known and not matched(name)), key=str)
    if validator.is_type(extra, "object"):
        for name in extras:
            yield from validator.descend(instance[name], extra, path=name)
    elif not extra and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, extras))} unexpected)")


def _unevaluated_properties(validator: Validator, unevaluated: Any, instance: Any,
                            schema: dict[str, Any]) -> Iterator[ValidationError]:
    """jsonschema's `unevaluatedProperties`, its evaluated names found with patterns on RE2 (`_evaluated_names`)."""
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_names(validator, instance, schema)
    failed = [name for name in instance if name not in evaluated
              and not _valid(validator.descend(instance[name], unevaluated, path=name, schema_path=name))]
    if failed:
        yield ValidationError(f"Unevaluated properties are not allowed ({', '.join(map(repr, failed))} unexpected)")


def _valid(errors: Iterator[ValidationError]) -> bool:
    return next(errors, None) is None


def _evaluated_names(validator: Validator, instance: dict[str, Any], schema: Any) -> set[str]:
    """The names of `instance` a schema evaluates, as jsonschema's `find_evaluated_property_keys_by_schema` finds
    them but with `patternProperties` matched on RE2."""
    if not isinstance(schema, dict):
        return set()
    names = _referenced_names(validator, instance, schema) | _applied_names(validator, instance, schema)
    if isinstance(schema.get("properties"), dict):
        names |= schema["properties"].keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if schema.get(keyword) is not None:
            names |= {name for name, value in instance.items() if _valid(validator.descend(value, schema[keyword]))}
    matched = _matcher(schema.get("patternProperties"))
    return names | {name for name in instance if matched(name)}


def _referenced_names(validator: Validator, instance: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """What the schemas `$ref` and `$dynamicRef` lead to evaluate."""
    names: set[str] = set()
    for keyword in _REFERENCE_KEYWORDS:
        if isinstance(schema.get(keyword), str):
            resolved = validator._resolver.lookup(schema[keyword])  # as jsonschema's own walk resolves them
            names |= _evaluated_names(validator.evolve(schema=resolved.contents, _resolver=resolved.resolver),
                                      instance, resolved.contents)
    return names


def _applied_names(validator: Validator, instance: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """What the subschemas that apply to the instance evaluate: `dependentSchemas` of present names, the passing
    ones of `allOf`, `oneOf` and `anyOf`, `if` with `then` or else `else`."""
    applied = [subschema for name, subschema in (schema.get("dependentSchemas") or {}).items() if name in instance]
    applied += [subschema for keyword in ("allOf", "oneOf", "anyOf") for subschema in schema.get(keyword) or []
                if _valid(validator.descend(instance, subschema))]
    if "if" in schema:
        chosen = validator.evolve(schema=schema["if"]).is_valid(instance)
        applied += [schema["if"], schema.get("then")] if chosen else [schema.get("else")]
    names: set[str] = set()
    for subschema in applied:
        names |= _evaluated_names(validator, instance, subschema)
    return names


def _multiple_of(validator: Validator, divisor: Any, instance: Any,
                 schema: dict[str, Any]) -> Iterator[ValidationError]:
    """jsonschema's `multipleOf`, an integer too large for a float judged exactly: it divides by a fractional
    divisor as a float and catches the quotient's overflow, not the division's (a 400-digit answer was a 500)."""
    try:
        yield from _MULTIPLE_OF(validator, divisor, instance, schema)
    except OverflowError:
        if (Fraction(instance) / Fraction(divisor)).denominator != 1:
            yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


_MULTIPLE_OF = Draft202012Validator.VALIDATORS["multipleOf"]


def _unique_items(validator: Validator, unique: Any, instance: Any,
                  schema: dict[str, Any]) -> Iterator[ValidationError]:
    if unique and validator.is_type(instance, "array") and len(set(map(_comparable, instance))) < len(instance):
        yield ValidationError("the array has non-unique elements")


def _comparable(value: Any) -> Any:
    """A hashable value equal to another exactly when JSON Schema holds the two JSON values equal: 1 and 1.0 are,
    true and 1 are not, objects whatever their keys' order."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list):
        return ("array", tuple(map(_comparable, value)))
    if isinstance(value, dict):
        return ("object", frozenset((name, _comparable(item)) for name, item in value.items()))
    return value


@dataclass
class _Budget:
    """When the form check running in this thread must stop, in the thread's CPU seconds, and the keyword checks
    made so far. CPU time, not the wall clock: the limit stops a check that explodes, and a busy machine (other
    processes, other threads) must not refuse an ordinary form that waited for a core (a two-field form was
    refused on a loaded host). Reading that clock is a system call (2 µs against 0.12 µs for the wall clock on a
    shared host), so it is read every CLOCK_EVERY keyword checks."""

    deadline: float
    calls: int = 0


CLOCK_EVERY = 16
# None: no limit (the glue's own result signatures, which no designer writes).
_BUDGET: ContextVar[_Budget | None] = ContextVar("form_check_budget", default=None)
Keyword = Callable[[Validator, Any, Any, dict[str, Any]], Any]


def _bounded(keyword: Keyword) -> Keyword:
    """A keyword's check that first stops the form check once it is past its time limit: every step of a
    validation, however deep it descends, is the call of a keyword."""
    def check(validator: Validator, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        _spend()
        return keyword(validator, value, instance, schema)
    return check


def _spend() -> None:
    """Count one piece of a form check's work (a keyword's check, a name matched against a pattern), and stop the
    check with FormCheckTimeout once it is past its time limit."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.calls += 1
        if budget.calls % CLOCK_EVERY == 0 and thread_time() > budget.deadline:
            raise FormCheckTimeout("checking the data against the form ran past its time limit")


FormValidator = validators.extend(Draft202012Validator, {
    name: _bounded(keyword) for name, keyword in {
        **Draft202012Validator.VALIDATORS, "pattern": _pattern, "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties, "unevaluatedProperties": _unevaluated_properties,
        "multipleOf": _multiple_of, "uniqueItems": _unique_items}.items()})


def form_validator(schema: dict[str, Any]) -> Validator:
    """A validator for submitted form data that fetches nothing and matches patterns in linear time."""
    return FormValidator(schema, registry=_NO_RETRIEVAL, format_checker=_FORMATS)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Form checks inside the block stop with FormCheckTimeout once they have used `seconds` of the thread's CPU
    time (None: no limit)."""
    token = _BUDGET.set(None if seconds is None else _Budget(thread_time() + seconds))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def form_errors(schema: dict[str, Any], data: Any, seconds: float) -> list[ValidationError]:
    """What the form finds wrong with `data`, checked within `seconds` (FormCheckTimeout past them)."""
    with time_limit(seconds):
        return list(form_validator(schema).iter_errors(data))


# Draft 2020-12's metaschema, checked under `time_limit`: its `$dynamicRef`s cost about 1 ms per subschema here, so
# a form of 5,000 `true` properties (74 KB, two nodes) took 5.6 s to deploy and a 2 MB upload minutes. jsonschema
# validates a subschema carrying `$schema` with the validator registered for it (its own, unbounded), and every
# schema of the metaschema carries one: they are checked here as copies without it, under ids of their own.
_PUBLIC_META = "https://json-schema.org/draft/2020-12/"
_PRIVATE_META = "https://cadreflow.invalid/draft/2020-12/"
_MetaValidator = validators.extend(Draft202012Validator, {
    name: _bounded(keyword) for name, keyword in Draft202012Validator.VALIDATORS.items()})


def _private_copy(schema: dict[str, Any]) -> dict[str, Any]:
    copy = {keyword: value for keyword, value in schema.items() if keyword != "$schema"}
    copy["$id"] = str(copy["$id"]).replace(_PUBLIC_META, _PRIVATE_META)
    return copy


_META_COPIES = [_private_copy(METASCHEMAS.contents(uri)) for uri in METASCHEMAS
                if isinstance(uri, str) and uri.startswith(_PUBLIC_META)]
_META_REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], DRAFT202012.create_resource(schema)) for schema in _META_COPIES)
_META_ROOT = next(schema for schema in _META_COPIES if schema["$id"] == f"{_PRIVATE_META}schema")


def check_form_schema(schema: Any) -> None:
    """`Draft202012Validator.check_schema`, stopped by the `time_limit` in force (SchemaError, FormCheckTimeout)."""
    validator = _MetaValidator(_META_ROOT, registry=_META_REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for error in validator.iter_errors(schema):
        raise SchemaError.create_from(error)


def schema_problems(schema: Any, strict: bool = True) -> list[tuple[str, str]]:
    """What makes a (well-formed) schema unsafe to accept (remote, dangling or looping references, keywords
    that move references or swap the validator, patterns RE2 refuses, an `x-pattern-message` that is not
    text), in English and in Chinese."""
    problems: list[tuple[str, str]] = []
    for node in _subschemas(schema):
        problems += _keyword_problems(node, is_root=node is schema, strict=strict)
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns += list(node["patternProperties"])
        problems += [found for found in map(_pattern_problem, patterns) if found is not None]
    if not strict:  # a stored version parsed again: only what was refused when it was accepted
        return problems
    expansion = _expand(schema, cap=0)
    problems += [(f"$ref {ref!r} points to no schema of this form", f"引用 {ref!r} 指向的结构不存在")
                 for ref in expansion.dangling]
    problems += [(f"$ref {ref!r} loops back to a schema that contains it",
                  f"引用 {ref!r} 循环引用了包含它的结构") for ref in expansion.loops]
    return problems


def _keyword_problems(node: dict[str, Any], is_root: bool, strict: bool) -> list[tuple[str, str]]:
    problems = []
    for keyword in _REFERENCE_KEYWORDS:
        target = node.get(keyword)
        if isinstance(target, str) and not target.startswith("#"):
            problems.append((f"{keyword} {target!r} is not local; only '#/...' references are allowed",
                             f"只允许本地引用 #/...（{keyword} {target!r}）"))
    if not strict:
        return problems
    moved = [keyword for keyword in _SCOPE_KEYWORDS if isinstance(node.get(keyword), str)]
    if not is_root and isinstance(node.get("$schema"), str):  # below it jsonschema would run its own validator
        moved.append("$schema")
    problems += [(f"{keyword} is not allowed in a form (use '#/...' references only; $schema only at the top)",
                  f"表单中不允许使用 {keyword}（只用 #/... 引用；$schema 只能写在最外层）") for keyword in moved]
    if "pattern" in node and "x-pattern-message" in node and not isinstance(node["x-pattern-message"], str):
        problems.append(("x-pattern-message must be a string", "x-pattern-message 必须是文字"))
    return problems


def expanded_size(schema: Any, cap: int) -> int:
    """How many objects and arrays validation may walk with every `$ref` expanded in place, or a number past
    `cap` once it is past it. Each node is counted once and its expansion remembered, so this is linear in
    the document however many times the expansion repeats it. References that loop or lead nowhere add
    nothing here (schema_problems refuses them)."""
    return _expand(schema, cap).size


@dataclass
class _Expansion:
    size: int = 0
    loops: list[str] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)


@dataclass
class _Frame:
    node: Any
    edges: list[tuple[Any, str | None]]
    size: int = 1
    next: int = 0


def _expand(root: Any, cap: int) -> _Expansion:
    """A depth-first walk over the containment tree plus every local `$ref` (iterative: a deep form must not
    exhaust the stack). A `$ref` reaching a node still on the walk's path closes a loop."""
    found = _Expansion()
    if not isinstance(root, dict | list):
        return found
    sizes: dict[int, int] = {}  # id of a node (all alive inside `root`) -> its size, capped past `cap`
    on_path: set[int] = {id(root)}
    frames = [_Frame(root, _edges(root, root, found.dangling))]
    while frames:
        frame = frames[-1]
        if frame.next < len(frame.edges):
            child, ref = frame.edges[frame.next]
            frame.next += 1
            if id(child) in sizes:
                frame.size += sizes[id(child)]
            elif id(child) in on_path:
                found.loops.append(ref or "")
            else:
                on_path.add(id(child))
                frames.append(_Frame(child, _edges(child, root, found.dangling)))
            continue
        frames.pop()
        on_path.discard(id(frame.node))
        sizes[id(frame.node)] = size = min(frame.size, cap + 1)
        if frames:
            frames[-1].size += size
    found.size = sizes[id(root)]
    return found


def _edges(node: Any, root: Any, dangling: list[str]) -> list[tuple[Any, str | None]]:
    """A node's children that are objects or arrays, then what its local `$ref` points to."""
    values = node.values() if isinstance(node, dict) else node
    edges: list[tuple[Any, str | None]] = [(value, None) for value in values if isinstance(value, dict | list)]
    for keyword in _REFERENCE_KEYWORDS:
        ref = node.get(keyword) if isinstance(node, dict) else None
        if not (isinstance(ref, str) and ref.startswith("#")):
            continue  # a remote reference is refused on its own
        target = _pointed(root, ref)
        if target is _NOWHERE:
            dangling.append(ref)
        elif isinstance(target, dict):
            edges.append((target, ref))
    return edges


_NOWHERE = object()


def _pointed(root: Any, ref: str) -> Any:
    """The schema a local `$ref` ("#" or "#/json/pointer", percent-encoded) names, as `referencing` resolves it
    in a form without `$id` or anchors; _NOWHERE when it names none (or something that is not a schema)."""
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return _NOWHERE  # a plain-name fragment needs an anchor, and anchors are refused
    node = root
    for segment in fragment.split("/")[1:] if fragment else []:
        segment = segment.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and (index := _list_index(segment)) is not None and index < len(node):
            node = node[index]
        else:
            return _NOWHERE
    return node if isinstance(node, dict | bool) else _NOWHERE


def _list_index(segment: str) -> int | None:
    """A JSON pointer's array index: ASCII digits only (str.isdigit also holds for "²", which int refuses)."""
    return int(segment) if segment.isascii() and segment.isdigit() and len(segment) <= 9 else None


def _pattern_problem(pattern: str) -> tuple[str, str] | None:
    try:
        compile_pattern(pattern)
    except ValueError as exc:
        return (f"pattern {pattern[:80]!r} is not supported ({exc}); use a pattern without backreferences or "
                f"lookaround", f"不支持的正则表达式 {pattern[:80]!r}（{exc}）")
    return None


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a schema document (keywords and subschemas alike), depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
