"""Use cases on cadres: register, read, list, and edit what may be edited directly."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.db.models import Cadre, ClearedAudit
from service.errors import Conflict

from . import access_log, policy, search, views
from .context import Actor, Services
from .forms import validate_form

POST_LEVELS = ["leading", "middle", "staff"]
CADRE_FORM: dict[str, Any] = {
    "type": "object", "title": "干部",
    "properties": {
        "id": {"type": "string", "title": "编号", "minLength": 1, "maxLength": 64,  # part of the cadre's URL
               "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
               "x-pattern-message": "只能使用字母、数字和 _ . - (letters, digits, _ . - only)"},
        "name": {"type": "string", "title": "姓名", "minLength": 1, "maxLength": 100},
        "unit": {"type": "string", "title": "单位", "minLength": 1, "maxLength": 200},
        "post": {"type": "string", "title": "职务", "maxLength": 200},
        "post_level": {"type": "string", "title": "职级", "enum": POST_LEVELS,
                       "x-enumNames": ["领导干部", "中层干部", "一般干部"]},
        "post_started_on": {"type": "string", "title": "任现职时间", "format": "date"},
    },
    "required": ["name", "unit", "post", "post_level", "post_started_on"],
    "additionalProperties": False,
}
EDITABLE = {"name", "unit"}
PROCESS_ONLY = {"post", "post_level", "post_started_on", "promotion_ban_until"}


AUDITED_LEVEL = "leading"  # seed 三(三): 先审计，后离任, for leading cadres, on every path


def departure_audit_cleared(session: Session, cadre: Cadre) -> bool:
    """Whether a departure audit of the cadre's current post has cleared (recorded after the day it began: the
    audit of the post left clears on the day the new one begins, and is no audit of the new one)."""
    since = [ClearedAudit.cleared_on > cadre.post_started_on] if cadre.post_started_on else []
    return bool(session.scalar(select(exists().where(ClearedAudit.cadre_id == cadre.id, *since))))


def post_change_needs_audit(session: Session, cadre: Cadre, new_post: str | None = None) -> bool:
    """The one rule on leaving a post: a leading cadre who holds one leaves it (for `new_post`, or for
    any other post when None) only after a departure audit of it has cleared."""
    if cadre.post_level != AUDITED_LEVEL or not cadre.post or new_post == cadre.post:
        return False
    return not departure_audit_cleared(session, cadre)


def change_post(session: Session, cadre_id: str, post: str, started_on: date | None) -> None:
    """The only way a cadre's post changes (process outcomes call it); refused while an audit is owed. Checked on
    the cadre's row locked: two cases changing one cadre's post at once (each holding only its own case) would
    otherwise both check the post as it was, and the second overwrite the first's unaudited new post."""
    cadre = lock_cadre(session, cadre_id)
    if cadre is None:
        raise Conflict(f"cadre {cadre_id} not found (干部不存在)")
    if post_change_needs_audit(session, cadre, post):
        raise Conflict(f"cadre {cadre_id} leaves a leading post only after a cleared departure audit "
                       "(先审计，后离任：领导干部离任须先完成离任经济责任审计)")
    cadre.post, cadre.post_started_on = post, started_on


def lock_cadre(session: Session, cadre_id: str) -> Cadre | None:
    """A cadre's row as it is now, for a change that depends on what it holds (row-locked until the commit on
    PostgreSQL; SQLite serialises writers), or None."""
    query = select(Cadre).where(Cadre.id == cadre_id).with_for_update(of=Cadre)
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def create_cadre(services: Services, actor: Actor, data: Any) -> dict[str, Any]:
    """Register a cadre (org_dept, admin)."""
    policy.require(actor, "cadre.create")
    fields = validate_form(CADRE_FORM, data, lambda *_: True)
    with services.db.unit_of_work() as session:
        cadre_id = fields.get("id") or uuid.uuid4().hex[:12]
        if session.get(Cadre, cadre_id) is not None:
            raise Conflict(f"cadre {cadre_id} exists already (干部编号已存在)")
        cadre = Cadre(id=cadre_id, name=fields["name"], unit=fields["unit"], post=fields["post"],
                      post_level=fields["post_level"],
                      post_started_on=date.fromisoformat(fields["post_started_on"]))
        session.add(cadre)
        session.flush()
        return views.cadre_view(session, cadre, actor)


def get_cadre(services: Services, actor: Actor, cadre_id: str, what: str = "cadre") -> dict[str, Any]:
    """A cadre with sanctions, cleared audits, assessments and cases, if the actor may read it."""
    with services.db.unit_of_work(write=False) as session:
        view = views.cadre_view(session, policy.readable_cadre(session, actor, cadre_id), actor)
    access_log.note(services, actor, what, cadre_id=cadre_id)
    return view


def list_cadres(services: Services, actor: Actor, query: Any = None,
                what: str | None = "cadre_list") -> list[dict[str, Any]]:
    """The cadres the actor may read, by id; with a query, those whose name, unit or id has it.

    Each is a full record (sanctions, audits, personal reports), so each returned cadre is a read in the
    access log (`what`, one INSERT for them all); None leaves it out, for a caller showing only a summary."""
    policy.require(actor, "cadre.list")
    statement = select(Cadre).where(policy.cadre_filter(actor))
    if search.clean_query(query):
        statement = statement.where(search.cadre_match(search.clean_query(query)))
    with services.db.unit_of_work(write=False) as session:
        rows = session.scalars(statement.order_by(Cadre.id))
        found = [views.cadre_view(session, c, actor) for c in rows]
    if what is not None:
        access_log.note_many(services, actor, what, [cadre["id"] for cadre in found])
    return found


def update_cadre(services: Services, actor: Actor, cadre_id: str, data: Any) -> dict[str, Any]:
    """Edit name or unit; a post changes only through a process outcome (409, for a cadre the actor may
    read: an unknown or unreadable one is 404 first, whatever the body)."""
    policy.require(actor, "cadre.edit")
    schema = {**CADRE_FORM, "required": [], "properties": {k: CADRE_FORM["properties"][k] for k in EDITABLE}}
    with services.db.unit_of_work() as session:
        cadre = policy.readable_cadre(session, actor, cadre_id)
        if isinstance(data, dict) and PROCESS_ONLY & set(data):
            raise Conflict("a post changes only through appointment or departure (职务只能通过任免流程变更)")
        fields = validate_form(schema, data, lambda *_: True)
        for key, value in fields.items():
            setattr(cadre, key, value)
        session.flush()
        return views.cadre_view(session, cadre, actor)
