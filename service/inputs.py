"""What every request's input must be before any route reads it: free of NUL characters.

A NUL has no place in any text CadreFlow keeps, and PostgreSQL refuses to store or compare one: a 500 at
the first write or lookup, where SQLite would keep it. So it is refused at the door, the way each part of
a request is refused when malformed: in the path like an unknown id (404), in the query as a malformed
parameter (400), in a form field or a JSON body as data that fails its form (422), the field named. A raw
body that a use case parses itself (the learning records' CSV) is checked there, with its line named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, request

from .errors import BadRequest, Invalid, NotFound

NUL = "\x00"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
PROBLEM = "含有无效字符（空字符） (contains a NUL character)"
MESSAGE = "the request contains a NUL character (请求含有无效字符：空字符)"


def refuse_nul_characters() -> None:
    """Before every route (after the pages' CSRF check, which bounds a public form's body first)."""
    if NUL in request.path:
        raise NotFound("not found (未找到)")
    if (name := _first_with_nul(request.args.items(multi=True))) is not None:
        raise BadRequest(MESSAGE, {name: PROBLEM})
    if request.mimetype in FORMS and (name := _first_with_nul(request.form.items(multi=True))) is not None:
        raise Invalid(MESSAGE, {name: PROBLEM})


def refuse_nul_in_json(body: Any) -> None:
    """422 naming the innermost field of the first string (key or value) of a decoded JSON body holding a
    NUL; iterative, as the body may be as deep as the parser allowed."""
    pending: list[tuple[str, Any]] = [("body", body)]
    while pending:
        name, item = pending.pop()
        if isinstance(item, str) and NUL in item:
            raise Invalid(MESSAGE, {_printable(name): PROBLEM})
        if isinstance(item, dict):
            pending += [(key, key) for key in item] + list(item.items())
        elif isinstance(item, list):
            pending += [(name, each) for each in item]


def _first_with_nul(pairs: Iterable[tuple[str, str]]) -> str | None:
    return next((_printable(key) for key, value in pairs if NUL in key or NUL in value), None)


def _printable(name: str) -> str:
    return name.replace(NUL, "\N{REPLACEMENT CHARACTER}")


def register_input_checks(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
