"""Where one task completion's time goes inside the service, phase by phase (issue 14, target 1's why).

Completions of the minimal approval process (bench/approval.bpmn) through the Flask app (its test client,
so no HTTP), each phase timed by the wall clock around the function that does it: the request around the
use case (Flask, the token check, parsing and writing JSON, the request log's hooks), the case's lock and the
reads under it, the form check, the engine step in its executor, storing the step (the flush of its writes),
building the reply, the commit, and the use case's remaining Python. Timers, not a profiler: a profiler
inflates Python several times more than the waits on the database and the executor, and so misplaces the
shares. The phases are means over the completions (the slowest tenth left out), so they add up to the
whole. `--step-in-process` measures what the engine step's isolation costs: the same completions with the
step run by a CaseRunner in the benchmark's own process, which the service never does (designer code runs
only in the sandbox's executors). Not a test: it asserts nothing.

    python bench/phases.py [--cases 300] [--backends sqlite,postgres] [--step-in-process]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_http  # noqa: E402 - after the path is set
from bench.bench_scale import database, drop  # noqa: E402
from bench.profile_step import signed_in_client  # noqa: E402
from service.usecases import stepper, tasks, views  # noqa: E402
from workflows.engine import CaseRunner  # noqa: E402

# (phase, owner, attribute): the function whose wall time is the phase, as the code that calls it finds it.
TIMED = (("lock and reads under it", tasks, "locked_task"), ("form check", tasks, "validate_form"),
         ("storing the step", stepper, "store_step"), ("the reply", views, "case_view"),
         ("commit", Session, "commit"))
WARM_UP = 20
ISOLATED_STEP = "engine step (isolated executor)"
IN_PROCESS_STEP = "engine step (in this process)"


class Stopwatches:
    """Per completion, the seconds spent in each phase."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def timed(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if self.rows:
                    row = self.rows[-1]
                    row[phase] = row.get(phase, 0.0) + time.perf_counter() - began
        return run

    def means(self) -> dict[str, float]:
        """Milliseconds per phase, the mean over the completions, the slowest tenth (by their whole) left out."""
        kept = sorted(self.rows, key=lambda row: row["request"])[:max(1, len(self.rows) * 9 // 10)]
        return {phase: sum(row.get(phase, 0.0) for row in kept) / len(kept) * 1000 for phase in self.rows[0]}


@contextmanager
def patched(watches: Stopwatches, app: Any, step_in_process: bool = False) -> Iterator[None]:
    """Every phase's function wrapped in its stopwatch while the block runs (the engine step: the app's own
    executor client, or with `step_in_process` a CaseRunner in this process in its place)."""
    services = app.extensions["cadreflow"]
    runner = services.runner
    originals = [(owner, name, getattr(owner, name)) for _, owner, name in TIMED]
    originals += [(runner, "complete", runner.complete), (app, "wsgi_app", app.wsgi_app),
                  (tasks, "complete_task", tasks.complete_task)]
    step, phase_of_step = runner.complete, ISOLATED_STEP
    if step_in_process:
        step, phase_of_step = CaseRunner(services.settings["DEADLINES"]).complete, IN_PROCESS_STEP
    try:
        for phase, owner, name in TIMED:
            setattr(owner, name, watches.timed(phase, getattr(owner, name)))
        runner.complete = watches.timed(phase_of_step, step)
        app.wsgi_app = watches.timed("request", app.wsgi_app)
        tasks.complete_task = watches.timed("use case", tasks.complete_task)
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def phases(backend: str, cases: int, step_in_process: bool = False) -> dict[str, float]:
    """Milliseconds per phase of a completion on `backend`, with the framework and the use case's rest derived;
    with `step_in_process`, the engine step run in this process instead of the isolated executor."""
    with tempfile.TemporaryDirectory() as workdir:
        url = database(backend, Path(workdir))
        try:
            app, client, headers, task_ids = signed_in_client(url, cases + WARM_UP)
            watches = Stopwatches()
            with patched(watches, app, step_in_process):
                for number, task_id in enumerate(task_ids):
                    watches.rows.append({})
                    reply = client.post(f"/api/tasks/{task_id}/complete", json=bench_http.ANSWER, headers=headers)
                    assert reply.status_code == 200, reply.json
                    if number < WARM_UP:  # caches, the executor and the connection warm up first
                        watches.rows.clear()
            app.extensions["cadreflow"].db.dispose()
        finally:
            drop(url)
    means = watches.means()
    inner = sum(value for phase, value in means.items() if phase not in ("request", "use case"))
    return {"Flask, token, JSON": means["request"] - means["use case"], **{
        phase: value for phase, value in means.items() if phase not in ("request", "use case")},
        "the use case's own Python": means["use case"] - inner, "in all": means["request"]}


def words(figures: dict[str, float]) -> str:
    return ", ".join(f"{phase} {value:.2f} ms" for phase, value in figures.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--step-in-process", action="store_true", help="also time the step run in this process")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        print(f"  {backend:8}: {words(phases(backend, args.cases))}", flush=True)
        if args.step_in_process:
            print(f"  {'':8}  {words(phases(backend, args.cases, step_in_process=True))}", flush=True)


if __name__ == "__main__":
    main()
