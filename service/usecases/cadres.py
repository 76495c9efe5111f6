"""Use cases on cadres: register, read, list, and edit what may be edited directly."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select

from service.db.models import Cadre
from service.errors import Conflict, Forbidden, NotFound

from . import views
from .context import Actor, Services
from .forms import validate_form

POST_LEVELS = ["leading", "middle", "staff"]
CADRE_FORM = {
    "type": "object", "title": "干部",
    "properties": {
        "id": {"type": "string", "title": "编号", "minLength": 1, "maxLength": 64,
               "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},  # it is part of the cadre's URL
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


def create_cadre(services: Services, actor: Actor, data: Any) -> dict[str, Any]:
    """Register a cadre (org_dept, admin)."""
    if not actor.has_any("org_dept"):
        raise Forbidden("only org_dept may register cadres (仅组织部可登记干部)")
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
        return views.cadre_view(session, cadre)


def get_cadre(services: Services, actor: Actor, cadre_id: str) -> dict[str, Any]:
    """A cadre with sanctions, cleared audits, assessments and cases."""
    with services.db.unit_of_work(write=False) as session:
        cadre = session.get(Cadre, cadre_id)
        if cadre is None:
            raise NotFound(f"cadre {cadre_id} not found (干部不存在)")
        return views.cadre_view(session, cadre)


def list_cadres(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Every cadre, by id."""
    with services.db.unit_of_work(write=False) as session:
        return [views.cadre_view(session, c) for c in session.scalars(select(Cadre).order_by(Cadre.id))]


def update_cadre(services: Services, actor: Actor, cadre_id: str, data: Any) -> dict[str, Any]:
    """Edit name or unit; a post changes only through a process outcome (409)."""
    if not actor.has_any("org_dept"):
        raise Forbidden("only org_dept may edit cadres (仅组织部可修改干部信息)")
    if isinstance(data, dict) and PROCESS_ONLY & set(data):
        raise Conflict("a post changes only through appointment or departure (职务只能通过任免流程变更)")
    schema = {**CADRE_FORM, "required": [], "properties": {k: CADRE_FORM["properties"][k] for k in EDITABLE}}
    fields = validate_form(schema, data, lambda *_: True)
    with services.db.unit_of_work() as session:
        cadre = session.get(Cadre, cadre_id)
        if cadre is None:
            raise NotFound(f"cadre {cadre_id} not found (干部不存在)")
        for key, value in fields.items():
            setattr(cadre, key, value)
        session.flush()
        return views.cadre_view(session, cadre)
