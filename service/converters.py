"""The `int` URL converter, bounded in its pattern: `<int(max=N):id>` past N is no route at all (404).

Werkzeug checks `max` only after it has picked a rule for the path and method. When another rule serves
the same path for another method (GET and POST of `/api/cases/<id>/comments`), an id past N then answers
405 instead of 404. A pattern that cannot match a number past N leaves such an id unmatched by every rule:
404, exactly like an unknown id. Every id of a route is bounded so, at most 2147483647 (2**31 - 1: the id
columns are INTEGER, which PostgreSQL holds in 32 bits; a larger number sent there is a DataError, and past
2**63 - 1 SQLite's driver raises OverflowError), so none is sent to the database out of range.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map


def at_most(bound: int) -> str:
    """A regular expression (no capturing group) matching the decimal numbers 0..bound, leading zeros allowed."""
    digits = str(bound)
    options = [rf"\d{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):  # the bound's first i digits, a smaller digit, then any digits
        if digit != "0":
            smaller = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            rest = len(digits) - i - 1
            options.append(digits[:i] + smaller + (rf"\d{{{rest}}}" if rest else ""))
    options.append(digits)
    return "0*(?:" + "|".join(options) + ")"


class BoundedInteger(IntegerConverter):
    """`int` whose pattern stops at its `max` (unsigned, variable length); otherwise Werkzeug's `int`."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = None,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)
        if max is not None and max >= 0 and not signed and not fixed_digits:
            self.regex = at_most(max)
