"""What every use case needs, wired once in `create_app` (or a test) and passed in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from service.db.models import ProcessVersion
from service.db.uow import Database
from workflows.engine import CaseRunner, ProcessDefinition, compile_process


@dataclass(frozen=True)
class Actor:
    """Who is acting: a username and its roles (`system` for timers and automatic steps)."""

    username: str
    roles: frozenset[str]

    def has_any(self, *roles: str) -> bool:
        return "admin" in self.roles or any(role in self.roles for role in roles)


SYSTEM = Actor("system", frozenset({"admin"}))


class DefinitionCache:
    """Parsed process versions, compiled once per process and shared by every case."""

    def __init__(self, roles: list[str]) -> None:
        self._roles = list(roles)
        self._by_id: dict[int, ProcessDefinition] = {}
        self._lock = threading.Lock()

    def by_id(self, session: Session, version_id: int) -> ProcessDefinition:
        """The parsed version, loading its row only when it is not cached yet."""
        found = self._by_id.get(version_id)
        return found if found is not None else self.get(session.get(ProcessVersion, version_id))

    def get(self, version: ProcessVersion) -> ProcessDefinition:
        found = self._by_id.get(version.id)
        if found is None:
            found = compile_process(version.process_key, version.bpmn_xml.encode(),
                                    {k: v.encode() for k, v in version.dmn_files.items()}, self._roles)
            with self._lock:
                self._by_id[version.id] = found
        return found


@dataclass
class Services:
    """The collaborators of every use case."""

    db: Database
    runner: CaseRunner
    definitions: DefinitionCache
    settings: dict[str, Any]
    today: Callable[[], date] = field(default=date.today)

    @property
    def roles(self) -> list[str]:
        return list(self.settings["ROLES"])


def build_services(settings: dict[str, Any]) -> Services:
    """Wire the database, the engine and the caches from settings."""
    return Services(
        db=Database(settings["DATABASE_URL"]),
        runner=CaseRunner(settings["DEADLINES"], float(settings["SCRIPT_TIMEOUT_SECONDS"]),
                          int(settings["MAX_TASK_DEPTH"])),
        definitions=DefinitionCache(settings["ROLES"]),
        settings=settings,
    )
