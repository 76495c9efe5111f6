"""Who holds a bearer token or web session, remembered between requests while every change is seen.

Every API request and page asks whose its token or session id is: on PostgreSQL a round trip and
about 0.45 ms of a web process's CPU, the largest cost a request pays before its own work. A process
may keep those answers (`CREDENTIAL_CACHE_SECONDS`), but only while it learns of every change to
`api_tokens`, `web_sessions`, `users` and `user_roles`, whoever makes it (the service, the CLI, an
administrator's SQL), through the triggers of migration 0022:

- PostgreSQL (`NotifiedCache`): the triggers NOTIFY channel `cadreflow_credentials`; a thread listens and
  forgets everything at each notification, as soon as PostgreSQL delivers it (about a millisecond on
  one host). Nothing is kept while the listening connection is down.
- SQLite (`PolledCache`): the triggers count changes in `credential_epoch`; before each use the cache asks
  SQLite whether any other connection has committed since (`PRAGMA data_version`, no I/O) and, if so,
  reads the count: a change made anywhere is seen by the next request.

Either way the process that made a change forgets at its own commit, an answer read before a change is
not kept after it, a refused secret is never kept, and no answer outlives its token's expiry or the
setting's seconds.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "cadreflow_credentials"
LISTENER_NAME = "cadreflow credential cache"  # its connection's application_name (pg_stat_activity)
TRIGGER = "api_tokens_changed"  # one of migration 0022's: without them nothing would be heard
MOST_ENTRIES = 10_000  # a bound on memory: past it the oldest answer goes
HEARTBEAT_SECONDS = 5.0  # the listening connection is checked this often (a dead peer sends no error)
WAKE_SECONDS = 0.25  # how soon the listener notices it should stop
RECONNECT_SECONDS = 1.0


class CredentialCache:
    """Answers kept per key until a change is seen or their deadline passes; subclasses say when the cache
    may be trusted at all (`_trusted`)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[Any, float]] = {}  # key -> (answer, monotonic deadline)
        self._generation = 0  # moves on at every forgetting: an answer read before it is not kept
        _FORKABLE.add(self)

    def get(self, key: Hashable) -> Any | None:
        """The answer kept for `key`, if one is and the cache may be trusted now."""
        if not self._trusted():
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[0]

    def generation(self) -> int | None:
        """A mark to take before reading the database for an answer (None: do not keep what you read)."""
        if not self._trusted():
            return None
        with self._lock:
            return self._generation

    def put(self, key: Hashable, answer: Any, generation: int | None, valid_seconds: float) -> None:
        """Keep an answer read after `generation` was taken, unless something changed since."""
        lasting = min(self._seconds, valid_seconds)
        if generation is None or lasting <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= MOST_ENTRIES:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (answer, time.monotonic() + lasting)

    def forget_all(self) -> None:
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        """Drop every answer and move the generation on, so none read before now is kept (lock held)."""
        self._entries.clear()
        self._generation += 1

    def close(self) -> None:
        self.forget_all()

    def _trusted(self) -> bool:
        raise NotImplementedError

    def _forked(self) -> None:
        """In a forked child: the memory came along, no thread did (nor a lock one held): start afresh."""
        self._lock = threading.Lock()
        self._forget()


class NotifiedCache(CredentialCache):
    """PostgreSQL: trusted while a thread of this process listens for the triggers' notifications."""

    def __init__(self, connect: Callable[[], Any], seconds: float) -> None:
        super().__init__(seconds)
        self._connect = connect  # a new autocommit psycopg connection, outside the pool
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # started on first use

    def close(self) -> None:
        """Stop listening: the thread ends within a wake-up and closes its connection before this returns."""
        self._stop.set()
        self._set_listening(False)
        if self._thread is not None:
            self._thread.join(WAKE_SECONDS * 4)

    def _trusted(self) -> bool:
        if self._thread is None and not self._stop.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._listen, name="credential-cache", daemon=True)
                    self._thread.start()
        return self._listening

    def _forked(self) -> None:
        super()._forked()
        self._listening, self._thread = False, None

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as connection:
                    self._serve(connection)
            except Exception:  # a lost or refused connection: no answer is trusted until listening again
                log.warning("credential cache: not listening for changes; asking the database each time",
                            exc_info=True)
            self._set_listening(False)
            self._stop.wait(RECONNECT_SECONDS)

    def _serve(self, connection: Any) -> None:
        if connection.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", (TRIGGER,)).fetchone() is None:
            raise LookupError("the credential triggers are missing: run `cadreflow init-db` (migration 0022)")
        connection.execute(f"LISTEN {CHANNEL}")
        self._set_listening(True)
        checked = time.monotonic()
        while not self._stop.is_set():
            for _ in connection.notifies(timeout=WAKE_SECONDS, stop_after=1):
                self.forget_all()
            if time.monotonic() - checked > HEARTBEAT_SECONDS:
                connection.execute("SELECT 1")  # raises if the server went away without a word
                checked = time.monotonic()

    def _set_listening(self, listening: bool) -> None:
        with self._lock:
            self._listening = listening
            self._forget()


class PolledCache(CredentialCache):
    """SQLite: trusted once it has seen that the change count did not move (or forgotten all if it did)."""

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__(seconds)
        self._path = path
        self._watch_lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._data_version: int | None = None  # SQLite's, on this connection: moves when another one commits
        self._changes: int | None = None  # the trigger-kept count of changes, as last read

    def close(self) -> None:
        with self._watch_lock:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
        super().close()

    def _trusted(self) -> bool:
        with self._watch_lock:
            try:
                changed = self._changed()
            except sqlite3.Error:  # no epoch table yet (an old schema), or the file went away: ask each time
                log.warning("credential cache: cannot watch for changes; asking the database each time",
                            exc_info=True)
                self._data_version = None
                self.forget_all()
                return False
        if changed:
            self.forget_all()
        return True

    def _forked(self) -> None:
        super()._forked()
        self._watch_lock = threading.Lock()
        self._connection, self._data_version = None, None  # SQLite connections must not cross a fork

    def _changed(self) -> bool:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        data_version = self._connection.execute("PRAGMA data_version").fetchone()[0]
        if data_version == self._data_version:
            return False  # nobody else committed: the count cannot have moved
        row = self._connection.execute("SELECT changes FROM credential_epoch WHERE id = 1").fetchone()
        changes = row[0] if row else None
        changed = changes != self._changes or changes is None
        self._data_version, self._changes = data_version, changes
        return changed


_FORKABLE: weakref.WeakSet[CredentialCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cache in list(_FORKABLE):
        cache._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)  # gunicorn --preload forks an app built in its master
