"""Who holds a bearer token or web session, remembered between requests while every change is heard.

Every API request and page asks whose its token or session id is: on PostgreSQL a round trip and
about 0.45 ms of a web process's CPU, the largest cost a completion pays before its own work. A process
may keep those answers (`CREDENTIAL_CACHE_SECONDS`), but only while it listens: triggers on
`api_tokens`, `web_sessions`, `users` and `user_roles` (migration 0022) send a NOTIFY on channel
`cadreflow_credentials` with every statement that changes them, from any process or an administrator's
SQL, and the listener then forgets everything it holds. A logout, a password or role change or a
deactivation thus reaches every process as soon as PostgreSQL delivers the notification (about a
millisecond on one host); the process that made the change forgets at its own commit.

Fail safe: nothing is kept while the listening connection is down (lost, or not yet listening), an
answer read before a notification arrived is not kept after it, a refused secret is never kept, and
no answer outlives its token's expiry or the setting's seconds. SQLite has no notifications: there the
cache stays off and each request asks the database, which is in-process there and costs no round trip.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "cadreflow_credentials"
LISTENER_NAME = "cadreflow credential cache"  # its connection's application_name (pg_stat_activity)
MOST_ENTRIES = 10_000  # a bound on memory: past it the oldest answer goes
HEARTBEAT_SECONDS = 5.0  # the listening connection is checked this often (a dead peer sends no error)
WAKE_SECONDS = 0.25  # how soon the listener notices it should stop
RECONNECT_SECONDS = 1.0


class CredentialCache:
    """Answers kept per key until a change is heard, their deadline passes, or the listener is down."""

    def __init__(self, connect: Callable[[], Any], seconds: float) -> None:
        self._connect = connect  # a new autocommit DB-API (psycopg) connection to listen on
        self._seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[Any, float]] = {}  # key -> (answer, monotonic deadline)
        self._generation = 0  # moves on at every forgetting: an answer read before it is not kept
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # started on first use
        _CACHES.add(self)

    def get(self, key: Hashable) -> Any | None:
        """The answer kept for `key`, if one is and the cache may be trusted now."""
        if not self._ready():
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not self._listening:
                return None
            if entry[1] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[0]

    def generation(self) -> int | None:
        """A mark to take before reading the database for an answer (None: do not keep what you read)."""
        if not self._ready():
            return None
        with self._lock:
            return self._generation if self._listening else None

    def put(self, key: Hashable, answer: Any, generation: int | None, valid_seconds: float) -> None:
        """Keep an answer read after `generation` was taken, unless something changed since."""
        lasting = min(self._seconds, valid_seconds)
        if generation is None or lasting <= 0:
            return
        with self._lock:
            if not self._listening or generation != self._generation:
                return
            if len(self._entries) >= MOST_ENTRIES:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (answer, time.monotonic() + lasting)

    def forget_all(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def close(self) -> None:
        """Stop listening: the thread ends within a wake-up and closes its connection before this returns."""
        self._stop.set()
        self._set_listening(False)
        if self._thread is not None:
            self._thread.join(WAKE_SECONDS * 4)

    def _ready(self) -> bool:
        """Whether a listener runs in this process, started on first use."""
        if self._thread is None and not self._stop.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._listen, name="credential-cache", daemon=True)
                    self._thread.start()
        return self._thread is not None

    def _forked(self) -> None:
        """In a forked child: the memory came along, the listening thread did not (nor a lock it held)."""
        self._lock = threading.Lock()
        self._entries, self._listening, self._thread = {}, False, None
        self._generation += 1

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
            self._entries.clear()
            self._generation += 1


_CACHES: weakref.WeakSet[CredentialCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cache in list(_CACHES):
        cache._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)  # gunicorn --preload forks an app built in its master
