"""Use cases of the designer's pages: the process catalogue and deploying a diagram edited in the browser."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from service.db.models import Case, ProcessVersion
from workflows.engine import DeploymentError, decision_ids, referenced_decisions

from . import processes, views
from .context import Actor, Services


def process_catalog(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Every process with all its versions (newest first) and how many cases are open on it."""
    with services.db.unit_of_work(write=False) as session:
        rows = list(session.scalars(select(ProcessVersion).order_by(ProcessVersion.process_key,
                                                                    ProcessVersion.version.desc())))
        open_counts = dict(session.execute(select(Case.process_key, func.count()).where(Case.status == "open")
                                           .group_by(Case.process_key)).all())
    catalog: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = catalog.setdefault(row.process_key, {**views.version_view(row), "versions": [],
                                                     "open_cases": open_counts.get(row.process_key, 0)})
        entry["versions"].append(views.version_view(row))
    return list(catalog.values())


def deploy_edited(services: Services, actor: Actor, key: str, bpmn: bytes,
                  uploaded_dmns: dict[str, bytes]) -> tuple[dict[str, Any], bool]:
    """Deploy a diagram edited in the modeler with the DMN tables it calls.

    The tables come from the newest version, replaced or extended by any uploaded with it, and
    only those the diagram references are kept (as `cadreflow deploy` does).
    """
    dmns = {**_newest_dmns(services, key), **uploaded_dmns}
    return processes.deploy_version(services, actor, key, bpmn, _referenced(bpmn, dmns))


def _newest_dmns(services: Services, key: str) -> dict[str, bytes]:
    with services.db.unit_of_work(write=False) as session:
        newest = session.scalar(select(ProcessVersion).where(ProcessVersion.process_key == key)
                                .order_by(ProcessVersion.version.desc()).limit(1))
        return {name: text.encode() for name, text in (newest.dmn_files if newest else {}).items()}


def _referenced(bpmn: bytes, dmns: dict[str, bytes]) -> dict[str, bytes]:
    try:
        wanted = referenced_decisions(bpmn)
        return {name: content for name, content in dmns.items() if decision_ids(content) & wanted}
    except DeploymentError:  # unreadable XML: deploy_version reports it with every other problem
        return dmns
