"""Task and start forms from their JSON Schema: fields to render, and submitted text back to JSON.

Rendering follows bpmn/CONVENTIONS.md: `title` labels, `enum` + `x-enumNames` choices, `format: date`
date inputs, booleans as yes/no, `x-user-role` as a choice of that role's users, `x-cadre` as the typeahead
cadre picker (never a list of every cadre), `required` marks.
Parsing only converts types (the use case validates): an empty input is left out, so a required
field comes back as "required", and text that is not a number stays text so its error says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from service.usecases.forms import date_range, primary_type, with_limits

from .i18n import localize
from .views import SUBMISSION

# The page's own hidden fields. A designer's form field of one of these names would be sent the page's value (the
# hidden field comes first in the body): the approver's CSRF token, stored in the case for all its readers to
# see. Such a field is neither shown nor read.
PAGE_FIELDS = frozenset({"csrf_token", SUBMISSION})
SHORT_TEXT = 200  # strings limited to this length get a one-line input, others a text area
RADIO_LIMIT = 4  # enumerations this short show as radio buttons, longer ones as a select
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class Field:
    """One input of a rendered form."""

    name: str
    label: str
    kind: str  # radio | select | boolean | date | integer | number | text | textarea | user | cadre
    required: bool
    value: str = ""
    error: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    minimum: Any = None
    maximum: Any = None
    max_length: int | None = None

    @property
    def chosen(self) -> str:
        """The label of the value among the options (a cadre picker names its chosen cadre so)."""
        return dict(self.options).get(self.value, "")


def fields_of(schema: dict[str, Any], values: MultiDict[str, str] | dict[str, Any] | None = None,
              errors: dict[str, str] | None = None, user_choices: dict[str, list[Any]] | None = None,
              skip: tuple[str, ...] = ()) -> list[Field]:
    """The form's fields, filled with `values` (submitted text or stored data) and `errors`."""
    schema = with_limits(schema)
    required = set(schema.get("required", []))
    values, errors, user_choices = values or {}, errors or {}, user_choices or {}
    return [_field(name, prop, name in required, _text(values.get(name)), localize(errors.get(name, "")),
                   user_choices.get(name))
            for name, prop in schema.get("properties", {}).items()
            if name not in skip and name not in PAGE_FIELDS and isinstance(prop, dict)]


def form_errors(errors: dict[str, str] | None, schema: dict[str, Any]) -> list[str]:
    """Problems that belong to no field of the form (shown above it)."""
    names = set(schema.get("properties", {}))
    return [localize(message) for name, message in (errors or {}).items() if name not in names]


def _field(name: str, prop: dict[str, Any], required: bool, value: str, error: str,
           users: list[Any] | None) -> Field:
    kind, options = _kind(prop, users)
    minimum, maximum = prop.get("minimum"), prop.get("maximum")
    if kind == "date":  # the browser's date picker offers only the dates the use case accepts
        minimum, maximum = (day.isoformat() for day in date_range())
    max_length = prop.get("maxLength") if kind in ("text", "textarea") else None
    return Field(name=name, label=prop.get("title") or name, kind=kind, required=required, value=value,
                 error=error, options=options, minimum=minimum, maximum=maximum,
                 max_length=max_length if isinstance(max_length, int) else None)


def _kind(prop: dict[str, Any], users: list[Any] | None) -> tuple[str, list[tuple[str, str]]]:
    if "enum" in prop:
        names = prop.get("x-enumNames")
        if not isinstance(names, list):  # a designer's typo must not break the page: show the values
            names = [str(v) for v in prop["enum"]]
        options = [(str(v), str(n)) for v, n in zip(prop["enum"], names, strict=False)]
        return ("radio" if len(options) <= RADIO_LIMIT else "select"), options
    if prop.get("x-cadre"):  # a typeahead; its options name only the cadre chosen (if any)
        return "cadre", [(str(c[0]), str(c[1])) for c in users or [] if not isinstance(c, str)]
    if users is not None:  # usernames, or (value, label) pairs
        return "user", [(u, u) if isinstance(u, str) else (str(u[0]), str(u[1])) for u in users]
    kinds = {"boolean": "boolean", "integer": "integer", "number": "number"}
    kind = primary_type(prop)
    if kind in kinds:
        return kinds[kind], []
    if prop.get("format") == "date":
        return "date", []
    return ("text" if prop.get("maxLength", SHORT_TEXT + 1) <= SHORT_TEXT else "textarea"), []


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_submission(schema: dict[str, Any], form: MultiDict[str, str]) -> dict[str, Any]:
    """Submitted text as JSON typed by the schema; empty inputs are left out."""
    data: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        raw = (form.get(name) or "").strip()
        if raw and isinstance(prop, dict) and name not in PAGE_FIELDS:
            data[name] = _typed(prop, raw)
    return data


def _typed(prop: dict[str, Any], raw: str) -> Any:
    kind = primary_type(prop)
    if kind == "integer" and _INTEGER.match(raw):
        return int(raw)
    if kind == "number" and _NUMBER.match(raw):
        number = float(raw)
        return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw
