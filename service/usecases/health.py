"""Whether a web process can serve, and whether a worker is enforcing deadlines.

A load balancer asks `GET /api/health` (the process answers) and `GET /api/ready` (its database answers, at the
schema this code expects, and its step executor runs a step); neither needs a login, and neither says more than
"ok" or "failed" for each part: what failed goes to the log. Timers, messages between cases, retries and bulk
starts move only while some worker polls, which no web process can see for itself: each worker notes the end of
every poll, and readiness and the inspectors' dashboard show how long ago that was.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import WorkerHeartbeat, utcnow
from service.db.schema import current_revision, head_revision
from service.db.uow import insert_skipping_duplicates, rows_changed

from .context import Services
from .views import iso

log = logging.getLogger(__name__)
LATE_AFTER = timedelta(minutes=5)  # a poll busy with a large bulk start or the daily scans takes a minute or two
POLLS_LATE = 10  # ... or this many poll intervals, if longer
EXECUTOR_CHECK_SECONDS = 1.0  # how long an executor check's answer stands: callers need no login, and must not be
# able to keep the executors, which every case's steps need, busy with checks
_executor_answers: weakref.WeakKeyDictionary[Any, tuple[float, str]] = weakref.WeakKeyDictionary()
clock = time.monotonic  # what the executor's answers are timed by


def note_poll(services: Services) -> None:
    """A worker finished a poll."""
    with services.db.unit_of_work() as session:
        now = utcnow()
        if rows_changed(session, update(WorkerHeartbeat).where(WorkerHeartbeat.id == 1).values(polled_at=now)) == 0:
            dialect = session.get_bind().dialect.name
            session.execute(insert_skipping_duplicates(dialect, WorkerHeartbeat).values(id=1, polled_at=now))


def worker_state(services: Services, now: datetime | None = None) -> dict[str, Any]:
    """When a worker last finished a poll, and whether that is `ok`, `late` (deadlines may be going unenforced)
    or `never` (no worker has run on this database)."""
    with services.db.unit_of_work(write=False) as session:
        return worker_state_in(session, services.settings, now)


def worker_state_in(session: Session, settings: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """`worker_state` inside a unit of work already open (a page built in one)."""
    polled_at = session.scalar(select(WorkerHeartbeat.polled_at).where(WorkerHeartbeat.id == 1))
    if polled_at is None:
        return {"state": "never", "last_poll": None}
    late_after = max(LATE_AFTER, timedelta(seconds=POLLS_LATE * float(settings["WORKER_POLL_SECONDS"])))
    late = (now or utcnow()) - polled_at > late_after
    return {"state": "late" if late else "ok", "last_poll": iso(polled_at)}


def readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    """Whether this process can serve, each part's "ok" or "failed", and the worker's state (which does not decide
    it: a web process serves cases while the worker is down)."""
    checks = {"database": _passes("database", lambda: _schema_at_head(services)), "executor": _executor(services)}
    ready = all(value == "ok" for value in checks.values())
    worker = _worker_or_unknown(services) if checks["database"] == "ok" else {"state": "unknown", "last_poll": None}
    return ready, {"status": "ready" if ready else "unavailable", "checks": checks, "worker": worker}


def _schema_at_head(services: Services) -> bool:
    with services.db.unit_of_work(write=False) as session:
        found = current_revision(session.connection())
    if found != head_revision():
        log.warning("not ready: the database's schema is at %s, this code expects %s (run cadreflow init-db)",
                    found, head_revision())
        return False
    return True


def _executor(services: Services) -> str:
    """Whether the step executor runs a step, asked at most once per EXECUTOR_CHECK_SECONDS in this process."""
    now = clock()
    kept = _executor_answers.get(services.runner)
    if kept is not None and now - kept[0] < EXECUTOR_CHECK_SECONDS:
        return kept[1]
    answer = _passes("executor", lambda: services.runner.check_rule("True", {}) is True)
    _executor_answers[services.runner] = (now, answer)
    return answer


def _passes(name: str, check: Callable[[], bool]) -> str:
    try:
        return "ok" if check() else "failed"
    except Exception:  # a readiness answer must not be a 500: the load balancer only needs to know
        log.exception("not ready: the %s check failed", name)
        return "failed"


def _worker_or_unknown(services: Services) -> dict[str, Any]:
    try:
        return worker_state(services)
    except Exception:
        log.exception("the worker's heartbeat could not be read")
        return {"state": "unknown", "last_poll": None}
