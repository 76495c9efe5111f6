"""Form schemas (JSON Schema) from designers, made safe to accept and to validate with.

jsonschema by default follows a `$ref` to `http://` and `file://` addresses and matches `pattern`
with Python's backtracking `re`. Here nothing is ever fetched (a registry without retrieval; a
`$ref` that is not local is refused at deploy) and patterns run on RE2, which is linear in the
input, so no pattern can stall the service (one RE2 cannot compile is refused at deploy).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry

_NO_RETRIEVAL: Registry = Registry()  # knows no resource and retrieves none: a remote $ref is unresolvable
_FORMATS = FormatChecker(formats=("date",))
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef")
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
        for name, value in instance.items():
            if compile_pattern(pattern).search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


FormValidator = validators.extend(Draft202012Validator, {"pattern": _pattern,
                                                         "patternProperties": _pattern_properties})


def form_validator(schema: dict[str, Any]) -> Validator:
    """A validator for submitted form data that fetches nothing and matches patterns in linear time."""
    return FormValidator(schema, registry=_NO_RETRIEVAL, format_checker=_FORMATS)


def schema_problems(schema: Any) -> list[tuple[str, str]]:
    """What makes a (well-formed) schema unsafe to accept (remote references, patterns RE2 refuses), in English
    and in Chinese."""
    problems: list[tuple[str, str]] = []
    for node in _subschemas(schema):
        for keyword in _REFERENCE_KEYWORDS:
            target = node.get(keyword)
            if isinstance(target, str) and not target.startswith("#"):
                problems.append((f"{keyword} {target!r} is not local; only '#/...' references are allowed",
                                 f"只允许本地引用 #/...（{keyword} {target!r}）"))
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns += list(node["patternProperties"])
        problems += [found for found in map(_pattern_problem, patterns) if found is not None]
    return problems


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
