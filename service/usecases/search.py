"""Search: cadres by name, unit or id (the typeahead picker), cases by number or by what their data says.

A case's searchable text (`cases.search_text`: process name, cadre id, every value of its data) is
kept by `steps.apply_step` with each step. Queries match substrings (`ILIKE`, so Chinese, which has no
word breaks, is found too); on PostgreSQL a trigram index (migration 0015) serves them, on SQLite the
same query scans. Every query adds the read policy's filter: a result never reveals what the caller
may not read.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from service.db.models import Cadre, Case

from . import policy
from .context import Actor, Services
from .views import MAX_ID, confidential_fields

MAX_QUERY = 100  # characters of a search; longer ones are cut
MAX_TEXT = 20_000  # characters of a case's searchable text
PICKER_LIMIT = 20
_CASE_NUMBER = re.compile(r"^#?(\d{1,18})$")


def search_text(process_name: str, cadre_id: str | None, data: Any, process_key: str = "") -> str:
    """What a case is found by: its process's name, its cadre's id and every value in its data but the
    confidential fields (a public report's contact: a search would tell whoever may not read it, digit by digit)."""
    parts = [process_name, cadre_id or ""]
    hidden = confidential_fields(process_key)
    _values({k: v for k, v in data.items() if k not in hidden} if hidden and isinstance(data, dict) else data, parts)
    return " ".join(p for p in parts if p)[:MAX_TEXT]


def _values(value: Any, into: list[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _values(item, into)
    elif isinstance(value, list):
        for item in value:
            _values(item, into)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        into.append(str(value))


def clean_query(query: Any) -> str:
    """The search text as the user meant it: stripped, cut to MAX_QUERY, '' when none."""
    return query.strip()[:MAX_QUERY] if isinstance(query, str) else ""


def _pattern(query: str) -> str:
    """A LIKE pattern matching the query anywhere, its own % _ and \\ taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", query) + "%"


def case_match(query: str) -> ColumnElement[bool]:
    """A WHERE clause for cases whose number is the query, or whose text or cadre's name/unit has it."""
    pattern = _pattern(query)
    by_cadre = select(Cadre.id).where(or_(Cadre.name.ilike(pattern, escape="\\"),
                                          Cadre.unit.ilike(pattern, escape="\\")))
    clauses: list[ColumnElement[bool]] = [Case.search_text.ilike(pattern, escape="\\"), Case.cadre_id.in_(by_cadre)]
    number = _CASE_NUMBER.match(query)
    if number and int(number.group(1)) <= MAX_ID:  # a larger number is no case (and no 500 on PostgreSQL)
        clauses.append(Case.id == int(number.group(1)))
    return or_(*clauses)


def cadre_match(query: str) -> ColumnElement[bool]:
    """A WHERE clause for cadres whose name, unit or id has the query."""
    pattern = _pattern(query)
    return or_(Cadre.name.ilike(pattern, escape="\\"), Cadre.unit.ilike(pattern, escape="\\"),
               Cadre.id.ilike(pattern, escape="\\"))


def find_cadres(services: Services, actor: Actor, query: Any, limit: int = PICKER_LIMIT) -> list[dict[str, Any]]:
    """Cadres the caller may choose for a case (policy `cadre.pick`) matching the query, by name, for the
    picker: `{id, name, unit, post}`."""
    policy.require(actor, "cadre.list")
    text = clean_query(query)
    statement = select(Cadre.id, Cadre.name, Cadre.unit, Cadre.post).where(policy.cadre_filter(actor, "cadre.pick"))
    if text:
        statement = statement.where(cadre_match(text))
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(statement.order_by(Cadre.name, Cadre.id).limit(limit))
        return [{"id": i, "name": n, "unit": u, "post": p} for i, n, u, p in rows]
