"""Choices the UI's filters and forms offer: cadres, processes, what an actor may start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.db.models import Cadre

from . import casefile, policy, processes, roles
from .context import Actor, Services
from .start_rules import DECISION_ONLY


def cadre_choices(services: Services, actor: Actor, cadre_id: str) -> list[tuple[str, str]]:
    """The cadre of `cadre_id`, if the actor may choose it, as [(id, "name · unit")]; else []. (Pages never list
    every cadre: a county has too many. Their pickers search with `search.find_cadres`.)"""
    choosable = policy.cadre_filter(actor, "cadre.pick")
    statement = select(Cadre.id, Cadre.name, Cadre.unit).where(choosable, Cadre.id == cadre_id)
    with services.db.unit_of_work(write=False) as session:
        return [(found, f"{name} · {unit}") for found, name, unit in session.execute(statement)]


def cadre_label(services: Services, actor: Actor, cadre_id: Any) -> str:
    """How a picker names its chosen cadre: "name · unit", or "" when none is chosen or it may not be read."""
    if not isinstance(cadre_id, str) or not cadre_id:
        return ""
    return dict(cadre_choices(services, actor, cadre_id)).get(cadre_id, "")


def process_choices(services: Services) -> list[tuple[str, str]]:
    """Every deployed process as (key, name)."""
    with services.db.unit_of_work(write=False) as session:
        return sorted(casefile.process_names(session).items(), key=lambda item: item[0])


def start_options(services: Services, actor: Actor, process: str | None,
                  cadre_id: str | None = None) -> dict[str, Any]:
    """The processes the actor may start and, for a chosen one, its start form and the chosen cadre's name
    (the cadre is picked by a typeahead, not from a list of all)."""
    tables = roles.policy_tables(services)
    startable = [(key, name) for key, name in process_choices(services)
                 if key not in DECISION_ONLY and policy.allows(actor, "case.start", tables, key)]
    chosen = process if process in dict(startable) else None
    form = processes.get_process(services, actor, chosen)["start_form"] if chosen else None
    return {"processes": startable, "process": chosen, "form": form,
            "cadres": cadre_choices(services, actor, cadre_id) if chosen and cadre_id else []}
