"""What every use case needs, wired once in `create_app` (or a test) and passed in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from limits.storage import Storage
from sqlalchemy.orm import Session

from service.db.models import ProcessVersion, User
from service.db.uow import Database, existing
from service.filestore import DirectoryStore, FileStore, store_from_settings
from service.mail import Mailer, mailer_from_settings
from service.ratelimit import open_storage
from workflows.engine import ProcessDefinition, compile_process
from workflows.executor import Limits, PoolSettings, StepExecutor, shared_pool


@dataclass(frozen=True)
class Actor:
    """Who is acting: a username and its roles (`system` for timers and automatic steps)."""

    username: str
    roles: frozenset[str]

    def has_any(self, *roles: str) -> bool:
        return "admin" in self.roles or any(role in self.roles for role in roles)


SYSTEM = Actor("system", frozenset({"admin"}))


def actor_of(user: User) -> Actor:
    """An account as an actor: its name and the roles it holds now."""
    return Actor(user.username, frozenset(user.role_keys))

# The display name of a code from one of the UI's tables (`label("sanction", "removal")`): passed in by the
# HTTP layer, which owns the translatable names, to use cases that write codes into words.
Label = Callable[[str, str | None], str]


class DefinitionCache:
    """Parsed process versions, compiled once per process and shared by every case.

    Keyed by content, not by row id: a deploy that is refused after its row was flushed (say, a timer start
    that cannot be scheduled) rolls back, and SQLite then gives that id to the next version deployed, here or
    in another process. Only a committed row, read back through `by_id`, maps an id to its content.
    Lane roles were checked at deploy; parsing an accepted version again does not check them (roles are data
    an admin changes, and a version once accepted stays runnable).
    """

    def __init__(self) -> None:
        self._by_content: dict[tuple[str, str], ProcessDefinition] = {}
        self._content_of: dict[int, tuple[str, str]] = {}  # a stored version's id -> its (key, content hash)
        self._lock = threading.Lock()

    def by_id(self, session: Session, version_id: int) -> ProcessDefinition:
        """The parsed version, loading its row only when it is not cached yet."""
        content = self._content_of.get(version_id)
        found = self._by_content.get(content) if content is not None else None
        if found is None:
            version = existing(session, ProcessVersion, version_id)
            found = self.get(version)
            with self._lock:
                self._content_of[version_id] = (version.process_key, version.content_hash)
        return found

    def get(self, version: ProcessVersion) -> ProcessDefinition:
        content = (version.process_key, version.content_hash)
        found = self._by_content.get(content)
        if found is None:
            found = compile_process(version.process_key, version.bpmn_xml.encode(),
                                    {k: v.encode() for k, v in version.dmn_files.items()}, None)
            with self._lock:
                self._by_content[content] = found
        return found


@dataclass
class Services:
    """The collaborators of every use case."""

    db: Database
    runner: StepExecutor
    definitions: DefinitionCache
    settings: dict[str, Any]
    # The county's date now (TIMEZONE): 17:00 UTC is already tomorrow in Shanghai. Tests move it.
    today: Callable[[], date] = field(default=date.today)
    # Counters of failed logins (and other throttles), shared across processes when on Redis.
    rate_storage: Storage = field(default_factory=lambda: open_storage("memory://"))
    # Sends the e-mails of notifications (None: SMTP_HOST is unset and mail is off); only the worker calls it.
    mailer: Mailer | None = None
    # Where attachment bytes live (service/filestore.py), content-addressed.
    files: FileStore = field(default_factory=lambda: DirectoryStore(Path("instance") / "attachments"))

    @property
    def zone(self) -> ZoneInfo:
        """The county's time zone (setting TIMEZONE): its dates are the ones deadlines and windows count in."""
        return county_zone(self.settings)

    @property
    def roles(self) -> list[str]:
        """Every role code, as the roles data says now (one short read; `roles.known_codes` is the home)."""
        from .roles import known_codes  # roles.py needs this module

        return known_codes(self)


def pool_settings(settings: dict[str, Any]) -> PoolSettings:
    """The step executors' pool, from settings (one pool per process and set of limits)."""
    return PoolSettings(workers=int(settings["EXECUTOR_WORKERS"]), max_workers=int(settings["EXECUTOR_MAX_WORKERS"]),
                        limits=Limits(memory_mb=int(settings["EXECUTOR_MEMORY_MB"])))


def county_zone(settings: dict[str, Any]) -> ZoneInfo:
    return ZoneInfo(str(settings.get("TIMEZONE") or "Asia/Shanghai"))


def county_today(zone: ZoneInfo) -> Callable[[], date]:
    """A clock of the county's date, whatever zone the server runs in."""
    return lambda: datetime.now(zone).date()


def build_services(settings: dict[str, Any]) -> Services:
    """Wire the database, the engine and the caches from settings."""
    services = Services(
        db=Database(settings["DATABASE_URL"], float(settings.get("CREDENTIAL_CACHE_SECONDS") or 0)),
        runner=StepExecutor(shared_pool(pool_settings(settings)), settings["DEADLINES"],
                            float(settings["SCRIPT_TIMEOUT_SECONDS"]), int(settings["MAX_TASK_DEPTH"]),
                            float(settings["STEP_TIMEOUT_SECONDS"]), max_state_kb=int(settings["MAX_CASE_STATE_KB"])),
        definitions=DefinitionCache(),
        settings=settings,
        rate_storage=open_storage(str(settings.get("RATE_LIMIT_STORAGE") or "memory://")),
        mailer=mailer_from_settings(settings),
        files=store_from_settings(settings),
        today=county_today(county_zone(settings)),
    )
    # Scripts' today() is the service's day, asked late: a test that moves the day moves it for scripts too.
    services.runner.today = lambda: services.today()
    return services
