"""Remarks on a case: anyone who may read the case may add one and read them all."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import Comment, utcnow
from service.errors import Invalid, TooLarge

from . import access_log, policy
from .casehistory import lock_case, record
from .context import Actor, Services
from .views import iso

MAX_TEXT = 5000


def add_comment(services: Services, actor: Actor, case_id: int, text: Any) -> dict[str, Any]:
    """Add a remark to a case the actor may read (else 404, before anything else); recorded in its history."""
    with services.db.unit_of_work() as session:
        policy.check_case(session, actor, case_id)
        policy.require(actor, "case.comment")
        _check_text(text)
        case = lock_case(session, case_id)
        _check_room(session, case.id, int(services.settings["MAX_CASE_COMMENTS"]))
        row = Comment(case_id=case.id, author=actor.username, text=text.strip(), at=utcnow())
        session.add(row)
        session.flush()
        # The text's digest, so `cadreflow check` finds a comment rewritten after the fact.
        record(session, case, actor.username, "comment", None,
               {"comment_id": row.id, "text_sha256": text_digest(row.text)})
        return comment_view(row)


def _check_text(text: Any) -> None:
    if not isinstance(text, str) or not text.strip():
        raise Invalid("a comment needs text (请填写意见内容)", {"text": "必填 (required)"})
    if len(text) > MAX_TEXT:
        raise Invalid(f"a comment has at most {MAX_TEXT} characters (意见不能超过 {MAX_TEXT} 字)",
                      {"text": f"最多 {MAX_TEXT} 字 (at most {MAX_TEXT} characters)"})


def _check_room(session: Session, case_id: int, most: int) -> None:
    """413 when the case holds `most` remarks already (counted under its lock): each is a row and a history entry
    for ever, and the case page lists them all, so one reader must not be able to add a million."""
    held = session.scalar(select(func.count()).select_from(Comment).where(Comment.case_id == case_id))
    if (held or 0) >= most:
        raise TooLarge(f"the case already holds {most} comments (本案意见已达 {most} 条上限)")


def list_comments(services: Services, actor: Actor, case_id: int) -> list[dict[str, Any]]:
    """The remarks on a case the actor may read, oldest first; the read is logged (`comments`)."""
    return access_log.read_case(services, actor, case_id, "comments",
                                lambda session, case: case_comments(session, case.id))


def case_comments(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The remarks on a case (inside an open session, its case already found readable)."""
    rows = session.scalars(select(Comment).where(Comment.case_id == case_id).order_by(Comment.id))
    return [comment_view(row) for row in rows]


def comment_view(row: Comment) -> dict[str, Any]:
    return {"id": row.id, "case_id": row.case_id, "author": row.author, "text": row.text, "at": iso(row.at)}


def text_digest(text: str) -> str:
    """The SHA-256 of a comment's text, as its history entry keeps it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
