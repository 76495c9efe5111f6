"""Small helpers every page blueprint shares: query parameters, the feedback of use-case errors, and forms that
create something sent once."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from flask import flash, request
from flask_babel import gettext as _

from service.errors import NotFound, ServiceError
from service.ratelimit import Throttle

from .access import actor, services
from .errors import Labels, flash_error

# The hidden field naming one showing of a form that creates something: a name no designer's form is likely to
# give a field of its own (the start form holds the start form's fields beside it).
SUBMISSION = "_submission"
SUBMISSION_DAYS = 1  # how long a sent submission id is remembered


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


def run_and_flash_once(call: Callable[[], Any], success: str, labels: Labels | None = None) -> bool:
    """`run_and_flash` for a form adding to a case's record, where nothing is ever removed (a comment, a file): a
    repeat of one submission (`first_sending`) adds nothing and says so; a refused one may be sent again."""
    if not first_sending():
        flash(_("此表单已提交过，未重复保存。"), "info")
        return False

    def given_back_when_refused() -> None:
        with sending_refused_gives_back():
            call()

    return run_and_flash(given_back_when_refused, success, labels)


def submission_id() -> str:
    """A fresh id for one showing of a form whose sending creates something (a case): its hidden SUBMISSION (the
    templates' `submission_id()`, a new one for each form)."""
    return secrets.token_urlsafe(16)


def first_sending() -> bool:
    """Whether the form's submission id is sent for the first time. A double click, a resend or a second tab of
    one page posts the same form again, and each post would create a case of its own: the repeat is told apart
    and acted on no more. Remembered in the login counters' storage (RATE_LIMIT_STORAGE: with Redis, across
    processes), taken in one atomic step so two posts at once cannot both pass. A post without an id (a page
    from before this field) is a first one."""
    key = _submission_key()
    return key is None or _submissions().take(key) == 0


def forget_sending() -> None:
    """The form was refused and created nothing: the same page may be sent again (corrected, or after Back)."""
    key = _submission_key()
    if key is not None:
        _submissions().give_back(key)


@contextmanager
def sending_refused_gives_back() -> Iterator[None]:
    """Around the use case a first sending runs: when it refuses (any ServiceError, a 404 too), nothing was
    created, so the submission id is given back and the same page may be sent again (corrected, or after Back)."""
    try:
        yield
    except ServiceError:
        forget_sending()
        raise


def _submission_key() -> str | None:
    sent = request.form.get(SUBMISSION, "")
    return f"{actor().username}:{sent}" if sent else None


def _submissions() -> Throttle:
    return Throttle(services().rate_storage, "cadreflow-submission", 1, SUBMISSION_DAYS * 24 * 3600)
