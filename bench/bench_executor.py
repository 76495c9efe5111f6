"""Benchmark: what running a step in an isolated executor process costs beside running it in-process.

The same engine operation (complete one task of a case, with the case's saved state in and out)
is timed through `CaseRunner` in this process and through `StepExecutor` (a confined worker
process reached over pipes), on the minimal three-approval process and on vetting. Prints the
medians and the difference per step. Not a test: it asserts nothing.

    python bench/bench_executor.py [--cases 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflows.engine import CaseRunner, ProcessDefinition, Step, compile_process  # noqa: E402 - after the path
from workflows.executor import PoolSettings, StepExecutor, shared_pool  # noqa: E402

BENCH = Path(__file__).resolve().parent
DEADLINES = {"public_notice": "P5D"}
ROLES = ["org_dept", "org_head", "committee", "discipline"]
FACTS = {"promotion_ban_until": "", "today": "2026-01-01", "open_accountability": False, "latest_grade": ""}
VETTING_START = {"cadre_id": "c1", "proposed_post": "局长", "selection_method": "competitive"}


def facts(name: str, params: dict, data: dict) -> dict:
    return dict(FACTS)


def approval() -> ProcessDefinition:
    return compile_process("approval", (BENCH / "approval.bpmn").read_bytes(), {}, ROLES)


def vetting() -> ProcessDefinition:
    bpmn = (ROOT / "bpmn" / "pre_appointment_vetting.bpmn").read_bytes()
    dmn = ROOT / "bpmn" / "vetting_eligibility.dmn"
    return compile_process("pre_appointment_vetting", bpmn, {dmn.name: dmn.read_bytes()}, ROLES)


def median_complete(runner: CaseRunner | StepExecutor, definition: ProcessDefinition, start_data: dict,
                    data: dict, cases: int) -> float:
    """Median milliseconds of completing the first open task of a freshly started case."""
    started = [runner.start(definition, start_data, facts) for _ in range(cases)]
    return statistics.median(_timed(lambda step=step: runner.complete(
        definition, step.state, step.open_tasks[0].id, data, facts)) for step in started)


def _timed(run: Callable[[], Step]) -> float:
    began = time.perf_counter()
    run()
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    cases = parser.parse_args().cases
    in_process = CaseRunner(DEADLINES)
    executor = StepExecutor(shared_pool(PoolSettings(workers=1, max_workers=1)), DEADLINES)
    rows = [("three approvals", approval(), {"cadre_id": "c1"}, {"approve": True}),
            ("vetting", vetting(), VETTING_START, {"opinion": "positive"})]
    print(f"step = complete one task (saved state in, new state out), median of {cases}")
    print(f"{'process':18} {'in-process ms':>14} {'executor ms':>12} {'cost ms':>8} {'ratio':>6}")
    for name, definition, start_data, data in rows:
        median_complete(executor, definition, start_data, data, 5)  # warm the worker's spec cache
        inside = median_complete(in_process, definition, start_data, data, cases)
        outside = median_complete(executor, definition, start_data, data, cases)
        print(f"{name:18} {inside:14.2f} {outside:12.2f} {outside - inside:8.2f} {outside / inside:6.2f}")


if __name__ == "__main__":
    main()
