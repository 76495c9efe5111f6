"""Small helpers every page blueprint shares: query parameters and the feedback of use-case errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import flash, request

from service.errors import NotFound, ServiceError

from .errors import Labels, flash_error


def arg(name: str, choices: tuple[str, ...] | None = None) -> str | None:
    """A query parameter, or None when empty or not one of `choices`."""
    value = request.args.get(name, "").strip() or None
    if value is not None and choices is not None and value not in choices:
        return None
    return value


def int_arg(name: str, default: int, maximum: int = 10_000) -> int:
    """A number query parameter (a page) within [1, maximum]; `default` when absent or not a number."""
    value = plain_int(request.args.get(name, ""))
    return default if value is None else min(max(value, 1), maximum)


def plain_int(raw: str) -> int | None:
    """`raw` as an integer when it is at most 18 ASCII digits, else None: `str.isdigit` also holds for "²" and for
    thousands of digits, which `int` refuses (a 500)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def flag(name: str) -> bool:
    return request.args.get(name, "") in ("1", "on", "true")


def query_without(name: str) -> dict[str, Any]:
    """The current query parameters less one (to build paging and sort links)."""
    return {k: v for k, v in request.args.items() if k != name and v}


def run_and_flash(call: Callable[[], Any], success: str, labels: Labels | None = None) -> bool:
    """Run one use case; flash its success, or its error (the one place errors become flashes), a field's problem
    under its label in `labels`, the labels of the form that was sent.

    NotFound is not flashed but answered with the 404 page: what the user may not read looks unknown.
    """
    try:
        call()
    except NotFound:
        raise
    except ServiceError as error:
        flash_error(error, labels)
        return False
    flash(success, "success")
    return True
