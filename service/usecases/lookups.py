"""Choices the UI's filters and forms offer: cadres, processes, what an actor may start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.db.models import Cadre

from . import casefile, processes
from .context import Actor, Services


def cadre_choices(services: Services) -> list[tuple[str, str]]:
    """Every cadre as (id, "name · unit"), by name."""
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(select(Cadre.id, Cadre.name, Cadre.unit).order_by(Cadre.name, Cadre.id))
        return [(cadre_id, f"{name} · {unit}") for cadre_id, name, unit in rows]


def process_choices(services: Services) -> list[tuple[str, str]]:
    """Every deployed process as (key, name)."""
    with services.db.unit_of_work(write=False) as session:
        return sorted(casefile.process_names(session).items(), key=lambda item: item[0])


def start_options(services: Services, actor: Actor, process: str | None) -> dict[str, Any]:
    """The processes the actor may start and, for a chosen one, its start form and the cadres."""
    allowed = services.settings.get("START_ROLES", {})
    startable = [(key, name) for key, name in process_choices(services) if actor.has_any(*allowed.get(key, []))]
    chosen = process if process in dict(startable) else None
    form = processes.get_process(services, actor, chosen)["start_form"] if chosen else None
    return {"processes": startable, "process": chosen, "form": form,
            "cadres": cadre_choices(services) if chosen else []}
