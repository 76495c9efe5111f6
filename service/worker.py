"""The worker: a loop that fires due timers and delivers what cases sent each other (the outbox),
standalone or as a thread inside `serve`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date

from .usecases import bulk, delivery, early_warning, health, idempotency, incidents, schedules
from .usecases.context import Services
from .usecases.reminders import Reminders
from .usecases.rotation import run_daily_scan
from .usecases.timers import fire_due_timers

log = logging.getLogger(__name__)
BATCHES_PER_POLL = 50  # start-job batches per poll, so timers and messages are not kept waiting


def _rotation_scan(services: Services) -> None:
    run_daily_scan(services)


def _early_warning_scan(services: Services) -> None:
    early_warning.run_daily_scan(services)


# Each a stage of its own: one scan failing at every poll must not keep the county from the other.
DAILY_SCANS = (("rotation scan", _rotation_scan), ("early-warning scan", _early_warning_scan))


def run_worker(services: Services, stop: threading.Event, once: bool = False) -> int:
    """Fire due timers every poll interval until `stop` is set (or once); returns cases moved. The chores that may
    take long (incident retries, bulk starts, the daily scans, reminders and mail) run in a thread of their own, so
    a scan of every cadre or a slow mail server never holds a due timer past its poll (WORKER_POLL_SECONDS); once,
    they run in turn."""
    interval = float(services.settings["WORKER_POLL_SECONDS"])
    chores = Chores(services)
    if once:
        moved = _timely(services) + chores.run()
        _stage("heartbeat", health.note_poll, services)
        return moved
    thread = threading.Thread(target=chores.loop, args=(stop, interval), name="cadreflow-chores", daemon=True)
    thread.start()
    moved = 0
    try:
        while True:
            moved += _timely(services)
            _stage("heartbeat", health.note_poll, services)  # readiness and the dashboard show when this last ran
            if stop.wait(interval):
                break
    except BaseException:  # Ctrl-C: the chores' daemon thread ends with the process, not after its stage
        stop.set()
        raise
    thread.join()  # stopped: the chores end after their current stage, so nothing runs on once the caller goes on
    return moved


def _timely(services: Services) -> int:
    """What a poll must not keep waiting: timers, messages between cases, timer starts."""
    moved = _stage("timers", fire_due_timers, services) or 0
    moved += _stage("messages", delivery.deliver_due, services) or 0
    _stage("timer starts", schedules.fire_due, services)
    return moved


class Chores:
    """The stages that may take long: incident retries (each step up to STEP_TIMEOUT_SECONDS), queued bulk starts,
    the daily scans (each once a day across workers; a failed scan is tried again at the next round), reminders
    with their mail, and forgetting the API's expired idempotency keys."""

    def __init__(self, services: Services) -> None:
        self.services, self.reminders = services, Reminders(services)
        self.scanned_on: dict[str, date] = {}  # per daily scan, the day this worker last saw it run or claimed

    def run(self) -> int:
        """One round; returns the cases the incident retries moved and the bulk starts opened."""
        services = self.services
        moved = _stage("incident retries", incidents.retry_due, services) or 0
        moved += _stage("bulk starts", lambda s: bulk.run_jobs(s, max_batches=BATCHES_PER_POLL), services) or 0
        today = services.today()
        for name, scan in DAILY_SCANS:
            if self.scanned_on.get(name) != today and _stage(name, scan, services) is not None:
                self.scanned_on[name] = today
        _stage("reminders", lambda _services: self.reminders.tick(), services)  # notices, digest, e-mail
        _stage("expired idempotency keys", idempotency.forget_expired, services)
        return moved

    def loop(self, stop: threading.Event, interval: float) -> None:
        while True:
            try:
                self.run()
            except Exception:  # say, the county's day unreadable: logged, and the next round tries again
                log.exception("worker chores failed")
            if stop.wait(interval):
                return


def _stage(name: str, action: Callable[[Services], int | None], services: Services) -> int | None:
    """One stage of a poll; None when it failed. A failure is logged and the other stages still run: one
    broken schedule or job must not stop every timer, retry, bulk start and reminder of the county."""
    try:
        return action(services) or 0
    except Exception:
        log.exception("worker stage failed: %s", name)
        return None


def start_worker_thread(services: Services) -> tuple[threading.Thread, threading.Event]:
    """Run the worker in a daemon thread (the one-machine default of `serve`)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(services, stop), name="cadreflow-timers", daemon=True)
    thread.start()
    return thread, stop
