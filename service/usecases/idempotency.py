"""Idempotency keys of the API's POSTs (docs/api.md, the IETF draft's `Idempotency-Key` header): a retry of a
request already carried out gets its first answer again, instead of a second case, report or comment.

A key is its caller's alone (the row is keyed by username), so no user can read or block another's answer. It is
claimed in a transaction of its own before the request runs, so of two sendings at once only one runs (the
other: 409); the answer is stored once the request succeeded, and a refused request gives the key back, since it
created nothing and may be sent again corrected. Keys are kept KEEP_HOURS, then forgotten (and reusable): a
caller's own expired keys at its next claim, everyone's by the worker's chores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete

from service.db.models import IdempotencyKey, utcnow
from service.errors import Conflict, Invalid, WrittenMeanwhile

from .context import Actor, Services

KEEP_HOURS = 24


@dataclass(frozen=True)
class Answer:
    """A stored first answer: its status, content type and body."""

    status: int
    content_type: str
    body: str


def claim(services: Services, actor: Actor, key: str, request_sha256: str) -> Answer | None:
    """Take `key` for a request whose digest is `request_sha256`: None when it is the first sending (run it, then
    `keep` its answer or `give_back` the key), the first answer when it is a retry of a finished one. A key used
    for another request is a 422; one whose request is still running a 409."""
    try:
        with services.db.unit_of_work() as session:
            # Expired keys of this caller go first: they may be reused, and the table stays small.
            session.execute(delete(IdempotencyKey).where(
                IdempotencyKey.username == actor.username,
                IdempotencyKey.created_at < utcnow() - timedelta(hours=KEEP_HOURS)))
            row = session.get(IdempotencyKey, (actor.username, key))
            if row is None:
                session.add(IdempotencyKey(username=actor.username, key=key, request_sha256=request_sha256,
                                           created_at=utcnow()))
                return None
            return _answer_of(row, request_sha256)
    except WrittenMeanwhile:  # the same key inserted at the same moment: that sending runs
        raise _running() from None


def keep(services: Services, actor: Actor, key: str, answer: Answer) -> None:
    """Store the first sending's answer under its key, for retries to get back."""
    with services.db.unit_of_work() as session:
        row = session.get(IdempotencyKey, (actor.username, key))
        if row is not None:
            row.status, row.content_type, row.body = answer.status, answer.content_type, answer.body


def give_back(services: Services, actor: Actor, key: str) -> None:
    """The first sending was refused and created nothing: the key may be sent again, with any body."""
    with services.db.unit_of_work() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.username == actor.username,
                                                     IdempotencyKey.key == key, IdempotencyKey.status.is_(None)))


def forget_expired(services: Services) -> int:
    """Forget every key older than KEEP_HOURS, and the answer kept with it (a worker's chore): an answer holds a
    record as its caller saw it, and is kept no longer than documented even if its user never sends again."""
    with services.db.unit_of_work() as session:
        gone = session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.created_at < utcnow() - timedelta(hours=KEEP_HOURS)))
        return int(getattr(gone, "rowcount", 0) or 0)


def _answer_of(row: IdempotencyKey, request_sha256: str) -> Answer:
    if row.request_sha256 != request_sha256:
        raise Invalid("this Idempotency-Key was used for another request; use a new key for a new request "
                      "(此幂等键已用于另一请求，新请求请使用新的键)",
                      {"Idempotency-Key": "已用于另一请求 (used for another request)"})
    if row.status is None:
        raise _running()
    return Answer(row.status, row.content_type or "application/json", row.body or "")


def _running() -> Conflict:
    return Conflict("a request with this Idempotency-Key is still being processed; retry shortly "
                    "(使用此幂等键的请求仍在处理中，请稍后重试)")
