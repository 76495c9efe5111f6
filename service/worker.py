"""The timer worker: a loop that fires due timers, standalone or as a thread inside `serve`."""

from __future__ import annotations

import logging
import threading

from .usecases.context import Services
from .usecases.rotation import run_daily_scan
from .usecases.timers import fire_due_timers

log = logging.getLogger(__name__)


def run_worker(services: Services, stop: threading.Event, once: bool = False) -> int:
    """Fire due timers every poll interval until `stop` is set (or once); returns cases moved."""
    interval = float(services.settings["WORKER_POLL_SECONDS"])
    moved, scanned_on = 0, None
    while True:
        try:
            moved += fire_due_timers(services)
            if scanned_on != services.today():  # the daily rotation scan, once a day across workers
                run_daily_scan(services)
                scanned_on = services.today()
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
