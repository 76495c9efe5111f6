"""One completion's cost in this checkout against an earlier commit, measured in turns on the same host.

The shared host's speed moves by half within minutes, so a figure taken an hour ago says little about a change:
this runs the same workload on both checkouts in alternating turns and prints each turn. The workload is the
in-process completion of `approval.bpmn` through the use case (`bench/profile_step.py`'s), without HTTP: wall
median, mean CPU of the service's process (the step executor's is not in it), and Python function calls per
completion (counted by cProfile in a separate pass: what a change removes, whatever the host's speed).

    python bench/bench_versions.py REV [--turns 2] [--backends sqlite,postgres] [--completions 600]

REV is checked out into a temporary git worktree that shares this checkout's interpreter.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(root: Path, backend: str, completions: int) -> dict[str, float]:
    """In a child process whose imports come from `root`: the completion's figures on `backend`."""
    sys.path.insert(0, str(root))
    from bench.bench_scale import database, drop
    from bench.profile_step import ORG, approval_services, open_tasks
    from service.usecases import tasks

    with tempfile.TemporaryDirectory() as workdir:
        url = database(backend, Path(workdir))
        try:
            services = approval_services(url)
            ids = open_tasks(services, completions + 220)
            for task_id in ids[:20]:  # warm caches and the executor
                tasks.complete_task(services, ORG, task_id, {"approve": True})
            walls, cpus = [], []
            for task_id in ids[20:20 + completions]:
                began, cpu = time.perf_counter(), time.process_time()
                tasks.complete_task(services, ORG, task_id, {"approve": True})
                cpus.append(time.process_time() - cpu)
                walls.append(time.perf_counter() - began)
            profile = cProfile.Profile()
            profile.enable()
            for task_id in ids[20 + completions:]:
                tasks.complete_task(services, ORG, task_id, {"approve": True})
            profile.disable()
            calls = pstats.Stats(profile).total_calls / 200
            services.db.dispose()
        finally:
            drop(url)
    return {"wall_ms": statistics.median(walls) * 1000, "cpu_ms": statistics.mean(cpus) * 1000, "calls": calls}


def turn(root: Path, backend: str, completions: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", str(root), backend, str(completions)],
                          check=True, capture_output=True, text=True, cwd=root)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        root, backend, completions = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        print(json.dumps(measure(root, backend, completions)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the earlier commit")
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--completions", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        earlier = Path(folder) / "earlier"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(earlier), args.rev], check=True)
        try:
            for backend in args.backends.split(","):
                for number in range(1, args.turns + 1):
                    for name, root in ((args.rev, earlier), ("this checkout", ROOT)):
                        figures = turn(root, backend, args.completions)
                        print(f"{backend:8} turn {number}  {name:14}  wall median {figures['wall_ms']:.2f} ms  "
                              f"CPU {figures['cpu_ms']:.2f} ms  {figures['calls']:.0f} Python calls per completion",
                              flush=True)
        finally:
            subprocess.run([*git, "remove", "--force", str(earlier)], check=False)


if __name__ == "__main__":
    main()
