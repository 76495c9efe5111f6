"""Deploy-time checks of decision tables: rules a UNIQUE table lets match together, and gaps.

Entries are Python expressions over `?` (the input). The ones a table can be reasoned about are
recognised: `-` (anything), literals (`"minor"`, `3`, `True`), `? in (...)` / `? not in (...)`,
and comparisons (`> 5`, `? <= cadre["today"]`, `1 < ? <= 5`) — against a number, or against the
same expression on both sides. Two UNIQUE rules are reported as overlapping only when every column
certainly overlaps (no false alarm on what cannot be analysed); gaps are reported (as warnings) for
tables whose every column is analysable, with an example of inputs no rule matches.
"""

from __future__ import annotations

import ast
import itertools
import math
from dataclasses import dataclass
from typing import Any

MAX_COMBINATIONS = 5000


@dataclass(frozen=True)
class Values:
    """One of these values (or, negated, none of them)."""

    items: frozenset[Any]
    negated: bool = False


@dataclass(frozen=True)
class Interval:
    """A range of numbers, or of values compared with one expression (`symbol`)."""

    low: float = -math.inf
    low_closed: bool = False
    high: float = math.inf
    high_closed: bool = False
    symbol: str | None = None

    def contains(self, value: float) -> bool:
        above = value > self.low or (self.low_closed and value == self.low)
        below = value < self.high or (self.high_closed and value == self.high)
        return above and below

    def meets(self, other: Interval) -> bool:
        low, low_closed = max((self.low, not self.low_closed), (other.low, not other.low_closed))
        high, high_closed = min((self.high, self.high_closed), (other.high, other.high_closed))
        return low < high or (low == high and not low_closed and high_closed)


ANY, UNKNOWN = "any", "unknown"
Constraint = Values | Interval | str
_FLIPPED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def constraint(entry: str | None) -> Constraint:
    """What an input entry admits, as far as it can be told without running it."""
    try:
        return _constraint((entry or "").strip())
    except (RecursionError, MemoryError, ValueError, OverflowError):
        return UNKNOWN  # too deep or too large to reason about; deploy's compile check names the rule


def _constraint(text: str) -> Constraint:
    if text in ("", "-"):
        return ANY
    literal = _literal(text)
    if literal is not _NONE:
        return Values(frozenset([literal]))
    try:
        tree = ast.parse(text.replace("?", "_q_") if "?" in text else f"_q_ {text}", mode="eval").body
    except SyntaxError:
        return UNKNOWN
    return _from_comparison(tree) if isinstance(tree, ast.Compare) else UNKNOWN


_NONE = object()
_EXACT = 2**53  # numbers are compared as floats: larger ones are left unanalysed, never misjudged


def _literal(text: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _NONE
    if _is_number(value) and not abs(value) <= _EXACT:  # past float's exact integers, or not finite
        return _NONE
    return value if isinstance(value, str | int | float | bool) or value is None else _NONE


def _from_comparison(tree: ast.Compare) -> Constraint:
    operands = [tree.left, *tree.comparators]
    found: Constraint = ANY
    for left, op, right in zip(operands, tree.ops, operands[1:], strict=False):
        if _is_input(left):
            part = _compare(op, right)
        elif _is_input(right):
            part = _compare(_FLIPPED.get(type(op), type(op))(), left) if type(op) in _FLIPPED else UNKNOWN
        else:
            part = UNKNOWN
        found = _both(found, part)
    return found


def _is_input(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "_q_"


def _compare(op: ast.cmpop, right: ast.AST) -> Constraint:
    if isinstance(op, ast.In | ast.NotIn):
        if not isinstance(right, ast.Tuple | ast.List | ast.Set):
            return UNKNOWN  # membership in a computed collection
        values = [_literal(ast.unparse(element)) for element in right.elts]
        return UNKNOWN if _NONE in values else Values(frozenset(values), negated=isinstance(op, ast.NotIn))
    value = _literal(ast.unparse(right))
    if isinstance(op, ast.Eq | ast.NotEq) and value is not _NONE:
        return Values(frozenset([value]), negated=isinstance(op, ast.NotEq))
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    symbol = None if number is not None else ast.unparse(right)
    if symbol is not None and value is not _NONE:
        return UNKNOWN  # a comparison with a string literal: ordering of text is not a table's business
    point = float(number) if number is not None else 0.0
    return _interval(op, point, symbol)


def _interval(op: ast.cmpop, point: float, symbol: str | None) -> Constraint:
    shapes: dict[type, Interval] = {
        ast.Lt: Interval(high=point, symbol=symbol), ast.LtE: Interval(high=point, high_closed=True, symbol=symbol),
        ast.Gt: Interval(low=point, symbol=symbol), ast.GtE: Interval(low=point, low_closed=True, symbol=symbol),
        ast.Eq: Interval(point, True, point, True, symbol)}
    return shapes.get(type(op), UNKNOWN)


def _both(first: Constraint, second: Constraint) -> Constraint:
    """Two conditions on one input at once (a chained comparison)."""
    if first == ANY:
        return second
    if isinstance(first, Interval) and isinstance(second, Interval) and first.symbol == second.symbol:
        low = max((first.low, not first.low_closed), (second.low, not second.low_closed))
        high = min((first.high, first.high_closed), (second.high, second.high_closed))
        return Interval(low[0], not low[1], high[0], high[1], first.symbol)
    return UNKNOWN


def meet(first: Constraint, second: Constraint) -> bool | None:
    """Can one input satisfy both? True, False, or None when it cannot be told."""
    if first == ANY or second == ANY:
        return True
    if UNKNOWN in (first, second):
        return None
    if isinstance(first, Values) and isinstance(second, Values):
        return _values_meet(first, second)
    if isinstance(first, Interval) and isinstance(second, Interval):
        return first.meets(second) if first.symbol == second.symbol else None
    values, interval = (first, second) if isinstance(first, Values) else (second, first)
    if isinstance(values, Values) and isinstance(interval, Interval) and interval.symbol is None \
            and not values.negated and all(_is_number(v) for v in values.items):
        return any(interval.contains(float(v)) for v in values.items)
    return None


def _values_meet(first: Values, second: Values) -> bool:
    if not first.negated and not second.negated:
        return bool(first.items & second.items)
    if first.negated and second.negated:
        return True  # an infinite domain minus two finite sets is never empty
    plain, excluded = (first, second) if not first.negated else (second, first)
    return bool(plain.items - excluded.items)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def overlapping_rules(rows: list[list[Constraint]]) -> list[tuple[int, int]]:
    """Pairs of (1-based) rules that certainly match together."""
    return [(i + 1, j + 1) for i, j in itertools.combinations(range(len(rows)), 2)
            if all(meet(a, b) is True for a, b in zip(rows[i], rows[j], strict=True))]


def uncovered_example(rows: list[list[Constraint]]) -> tuple[Any, ...] | None:
    """Inputs no rule matches, when every column can be enumerated; None when covered or unknown."""
    if not rows:
        return None
    columns = list(zip(*rows, strict=True))
    domains = [_domain(column) for column in columns]
    known = [domain for domain in domains if domain is not None]
    if len(known) < len(domains) or math.prod([len(d) for d in known]) > MAX_COMBINATIONS:
        return None
    for combination in itertools.product(*known):
        if not any(all(_admits(c, value) for c, value in zip(row, combination, strict=True)) for row in rows):
            return combination
    return None


def _domain(column: tuple[Constraint, ...]) -> list[Any] | None:
    """Representative inputs for a column: its literal values, or points around its number bounds."""
    if any(c == UNKNOWN or (isinstance(c, Interval) and c.symbol) or (isinstance(c, Values) and c.negated)
           for c in column):
        return None
    literals = {v for c in column if isinstance(c, Values) for v in c.items}
    bounds = {b for c in column if isinstance(c, Interval) for b in (c.low, c.high) if math.isfinite(b)}
    if bounds and any(not _is_number(v) for v in literals):
        return None
    if not bounds:
        return sorted(literals, key=repr) or ["(any)"]
    points = sorted(bounds | {float(v) for v in literals})
    between = [(a + b) / 2 for a, b in itertools.pairwise(points)]
    return sorted({*points, *between, points[0] - 1, points[-1] + 1})


def _admits(c: Constraint, value: Any) -> bool:
    if c == ANY:
        return True
    if isinstance(c, Values):
        return value in c.items
    return isinstance(c, Interval) and _is_number(value) and c.contains(float(value))
