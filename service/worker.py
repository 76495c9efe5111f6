"""The worker: a loop that fires due timers and delivers what cases sent each other (the outbox),
standalone or as a thread inside `serve`."""

from __future__ import annotations

import logging
import threading

from .usecases import bulk, delivery, early_warning, incidents, schedules
from .usecases.context import Services
from .usecases.reminders import Reminders
from .usecases.rotation import run_daily_scan
from .usecases.timers import fire_due_timers

log = logging.getLogger(__name__)
BATCHES_PER_POLL = 50  # start-job batches per poll, so timers and messages are not kept waiting


def run_worker(services: Services, stop: threading.Event, once: bool = False) -> int:
    """Fire due timers every poll interval until `stop` is set (or once); returns cases moved."""
    interval = float(services.settings["WORKER_POLL_SECONDS"])
    moved, scanned_on, reminders = 0, None, Reminders(services)
    while True:
        try:
            moved += fire_due_timers(services)
            moved += delivery.deliver_due(services)
            schedules.fire_due(services)
            moved += incidents.retry_due(services)
            moved += bulk.run_jobs(services, max_batches=BATCHES_PER_POLL)
            if scanned_on != services.today():  # the daily scans, each once a day across workers
                run_daily_scan(services)
                early_warning.run_daily_scan(services)
                scanned_on = services.today()
            reminders.tick()  # notifications falling due, the daily digest, e-mail
        except Exception:
            log.exception("timer poll failed")
        if once or stop.wait(interval):
            return moved


def start_worker_thread(services: Services) -> tuple[threading.Thread, threading.Event]:
    """Run the worker in a daemon thread (the one-machine default of `serve`)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(services, stop), name="cadreflow-timers", daemon=True)
    thread.start()
    return thread, stop
