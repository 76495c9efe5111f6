"""`make bench` still runs: its two scripts at a tiny size, every target printed beside its limit.

Not a speed test (nothing is timed or compared to a limit here): the benchmarks are not part of the suite, so
a change they depend on can break them unseen. Bulk batches running as their author's account did: the bulk
benchmark's author had no account, its jobs failed, and `make bench` divided by zero cases. Run in the
PostgreSQL pass beside the load test (`-m "load or bench"`), alone on the machine, since it starts clusters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_POSTGRES

pytestmark = [pytest.mark.postgres, pytest.mark.bench]

ROOT = Path(__file__).resolve().parents[2]
CADRES = 40


def bench(script: str, *args: str) -> str:
    """A benchmark script's output; it must end with exit 0."""
    if not TEST_POSTGRES:
        pytest.skip("LOUD SKIP: make bench needs PostgreSQL on 127.0.0.1; set CADREFLOW_TEST_POSTGRES to run it")
    done = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def summary(output: str) -> list[str]:
    """The lines of the summary `targets.py` prints last, one per target and backend."""
    tail = output.split("Issue 14 targets (this run):", 1)[1]
    return [line for line in tail.splitlines() if line[:2] in {"1.", "2.", "3.", "4."}]


def test_every_target_is_measured_and_judged_against_its_limit() -> None:
    output = bench("targets.py", "--cases", "5", "--per-client", "5", "--cadres", str(CADRES))
    lines = summary(output)
    assert [line.split(":")[0] for line in lines] == [
        "1. completion over HTTP, sqlite  ", "1. completion over HTTP, postgres",
        "2. flat history", "3. throughput, PostgreSQL, 2 web processes, 8 clients", "4. bulk start, PostgreSQL"]
    assert all("limit" in line and line.rstrip().split(":")[-1].strip().split(" ")[0] in {"met", "NOT"}
               for line in lines[:4]), lines
    assert f"4. bulk start, PostgreSQL: {CADRES} cases in" in lines[4]  # every cadre's case was opened
    assert "EXTRAPOLATED to 100,000" in lines[4]
    assert f"inbox at {CADRES} open tasks" in output


def test_the_executor_benchmark_prints_both_ways_of_stepping_each_process() -> None:
    rows = {line[:20].strip(): line[20:].split() for line in bench("bench_executor.py", "--cases", "5").splitlines()}
    for process in ("three approvals", "vetting"):
        in_process, executor, _cost, _ratio = (float(figure) for figure in rows[process])
        assert in_process > 0 and executor > 0
