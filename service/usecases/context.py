"""What every use case needs, wired once in `create_app` (or a test) and passed in."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
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

K = TypeVar("K")
V = TypeVar("V")


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

    It keeps the `size` versions used last (DEFINITION_CACHE_SIZE): a designer deploying version after version
    would otherwise grow every web and worker process for as long as it runs. A version dropped is parsed again
    from its row the next time a case needs it. Parsing runs outside the lock (it is slow); two threads may
    then parse the same version at once, and the second result replaces an equal first.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._by_content: OrderedDict[tuple[str, str], ProcessDefinition] = OrderedDict()
        # A stored version's id -> its (key, content hash); bounded alike, so ids of versions long unused go too.
        self._content_of: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def by_id(self, session: Session, version_id: int) -> ProcessDefinition:
        """The parsed version, loading its row only when it is not cached yet."""
        with self._lock:
            content = _used(self._content_of, version_id)
            found = _used(self._by_content, content) if content is not None else None
        if found is None:
            version = existing(session, ProcessVersion, version_id)
            found = self.get(version)
            with self._lock:
                _keep(self._content_of, version_id, (version.process_key, version.content_hash), self._size)
        return found

    def get(self, version: ProcessVersion) -> ProcessDefinition:
        content = (version.process_key, version.content_hash)
        with self._lock:
            found = _used(self._by_content, content)
        if found is None:
            found = compile_process(version.process_key, version.bpmn_xml.encode(),
                                    {k: v.encode() for k, v in version.dmn_files.items()}, None)
            with self._lock:
                _keep(self._by_content, content, found, self._size)
        return found

    def __len__(self) -> int:
        """How many parsed versions it holds."""
        return len(self._by_content)


def _used(cache: OrderedDict[K, V], key: K) -> V | None:
    """The cached value, marked as used last; the caller holds the lock."""
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
    return found


def _keep(cache: OrderedDict[K, V], key: K, value: V, size: int) -> None:
    """Cache a value as used last, dropping the ones used longest ago past `size`; the caller holds the lock."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


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
    _key: str = field(default="", repr=False)
    _key_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def signing_key(self) -> str:
        """The instance's secret: SECRET_KEY, or the key it generated and keeps beside its database. Asked once per
        process (an in-memory database's key is new at every generation, so it is kept here)."""
        with self._key_lock:
            if not self._key:
                from service.config import secret_key
                from service.db.instance_key import instance_key

                self._key = secret_key(self.settings) or instance_key(self.db)
            return self._key

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
        definitions=DefinitionCache(int(settings["DEFINITION_CACHE_SIZE"])),
        settings=settings,
        rate_storage=open_storage(str(settings.get("RATE_LIMIT_STORAGE") or "memory://")),
        mailer=mailer_from_settings(settings),
        files=store_from_settings(settings),
        today=county_today(county_zone(settings)),
    )
    # Scripts' today() is the service's day, asked late: a test that moves the day moves it for scripts too.
    services.runner.today = lambda: services.today()
    return services
