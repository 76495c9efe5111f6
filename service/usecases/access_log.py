"""The access log: every read of a case's detail or of a cadre record, and reading it back.

Each read is noted after its own read transaction, in a short write transaction of one INSERT, so
reads never hold SQLite's write lock while they build their answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service.db.models import AccessLogEntry, Case, utcnow

from . import policy, queries
from .context import Actor, Services

PER_PAGE = 50
Read = TypeVar("Read")


def note(services: Services, actor: Actor, what: str, case_id: int | None = None,
         cadre_id: str | None = None) -> None:
    """Record that the actor read something (`what`: case, history, diagram, task, cadre, comments, ...)."""
    with services.db.unit_of_work() as session:
        session.add(AccessLogEntry(at=utcnow(), username=actor.username, case_id=case_id, cadre_id=cadre_id,
                                   what=what))


def read_case(services: Services, actor: Actor, case_id: int, what: str,
              read: Callable[[Session, Case], Read]) -> Read:
    """`read` of a case the actor may read (404 otherwise) in one read transaction, then noted as `what`."""
    with services.db.unit_of_work(write=False) as session:
        case = policy.readable_case(session, actor, case_id)
        cadre_id, found = case.cadre_id, read(session, case)
    note(services, actor, what, case_id, cadre_id)
    return found


def note_many(services: Services, actor: Actor, what: str, cadre_ids: list[str]) -> None:
    """Record that the actor read several cadre records at once (a list of full records): one entry each,
    written by one INSERT executed for all of them, not a statement per cadre."""
    _insert(services, actor, what, [(None, cadre_id) for cadre_id in cadre_ids])


def note_cases(services: Services, actor: Actor, what: str, cases: list[tuple[int, str | None]]) -> None:
    """Record that the actor read several cases whole at once (a list of them with their data): one entry per
    (case id, cadre id), written by one INSERT for all of them."""
    _insert(services, actor, what, cases)


def _insert(services: Services, actor: Actor, what: str, reads: Sequence[tuple[int | None, str | None]]) -> None:
    if not reads:
        return
    at = utcnow()
    with services.db.unit_of_work() as session:
        session.execute(insert(AccessLogEntry), [{"at": at, "username": actor.username, "case_id": case_id,
                                                  "cadre_id": cadre_id, "what": what} for case_id, cadre_id in reads])


def read_log(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """One page of the log, newest first, filtered by case, cadre and username (discipline_head, admin); a page past
    the last is empty."""
    policy.require(actor, "access_log.read")
    query = select(AccessLogEntry)
    for column in ("case_id", "cadre_id", "username"):
        if filters.get(column) is not None:
            query = query.where(getattr(AccessLogEntry, column) == filters[column])
    page, per_page = filters.get("page") or 1, filters.get("per_page") or PER_PAGE
    with services.db.unit_of_work(write=False) as session:
        rows, where = queries.page_of(session, query.order_by(AccessLogEntry.id.desc()), page, per_page, clamp=False)
        return {"items": [entry_view(row) for row in rows], **where}


def entry_view(entry: AccessLogEntry) -> dict[str, Any]:
    view: dict[str, Any] = {"at": entry.at.isoformat(), "username": entry.username, "what": entry.what}
    if entry.case_id is not None:
        view["case_id"] = entry.case_id
    if entry.cadre_id is not None:
        view["cadre_id"] = entry.cadre_id
    return view
