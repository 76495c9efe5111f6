"""What every request's input must be before any route reads it."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, request

from .errors import BadRequest

NUL = "\x00"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def refuse_nul_characters() -> None:
    """A NUL character has no place in any text CadreFlow keeps, and PostgreSQL refuses to store one (a 500 at
    the first write or lookup, where SQLite would keep it): 400 wherever it appears in the path, the query or
    a form's fields. JSON bodies are checked where they are parsed (`service.api.parse_json`)."""
    if NUL in request.path or _holds_nul(request.args.items(multi=True)):
        raise nul_refused()
    if request.mimetype in FORMS and _holds_nul(request.form.items(multi=True)):
        raise nul_refused()


def nul_refused() -> BadRequest:
    return BadRequest("the request contains a NUL character (请求含有空字符，已拒绝)")


def _holds_nul(pairs: Iterable[tuple[str, str]]) -> bool:
    return any(NUL in key or NUL in value for key, value in pairs)


def register_input_checks(app: Flask) -> None:
    """After the pages' CSRF check, which bounds a public form's body before anything parses it."""
    app.before_request(refuse_nul_characters)
