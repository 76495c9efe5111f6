"""Benchmark: CadreFlow over real HTTP on SQLite, beside the raw SpiffWorkflow step on the same BPMN.

Prints: median time to start a vetting case, median time to complete one task, completions per
second with 4 concurrent clients, and the raw step (deserialize + complete + run + serialize with
SpiffWorkflow's own serializer and default script engine). Not a test: it asserts nothing.

    python bench/bench_http.py [--cases 60] [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_scale import CADRE, START, login, run_clients  # noqa: E402 - after the path is set
from bench.cluster import Client, Cluster  # noqa: E402

FACTS = {"promotion_ban_until": "", "today": "2026-01-01", "open_accountability": False, "latest_grade": ""}


def timed(client: Client, method: str, path: str, body: object) -> tuple[float, dict]:
    began = time.perf_counter()
    status, answer, _ = client.call(method, path, body)
    elapsed = time.perf_counter() - began
    assert status in (200, 201), answer
    return elapsed, answer


def bench_http(cases: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(f"sqlite:///{Path(workdir) / 'bench.sqlite3'}", Path(workdir))
        cluster.cli("init-db")
        cluster.cli("create-user", "bench", "--password", "pw", "--role", "org_dept")
        server = cluster.serve()
        try:
            token = login(server.port)
            with Client([server.port], token) as client:
                client.call("POST", "/api/cadres", CADRE)
                for _ in range(5):  # warm the spec cache and the connection
                    client.call("POST", "/api/cases", START)
                starts = [timed(client, "POST", "/api/cases", START) for _ in range(cases)]
                completions = [timed(client, "POST", f"/api/tasks/{_family_task(case)}/complete",
                                     {"data": {"opinion": "positive"}})[0] for _, case in starts]
            rate, _ = run_clients(server.port, token, clients=4, per_client=cases // 2)
        finally:
            cluster.stop()
    return {"start_ms": statistics.median(t for t, _ in starts) * 1000,
            "complete_ms": statistics.median(completions) * 1000, "throughput_4_clients": rate}


def _family_task(case: dict) -> str:
    return next(t["id"] for t in case["open_tasks"] if t["element_id"] == "solicit_family_opinion")


class _FactsEngine(PythonScriptEngine):
    def call_service(self, task, operation_name, operation_params):
        return json.dumps(FACTS if operation_name == "cadre_facts" else {})


def bench_raw_spiff(rounds: int) -> float:
    """Median raw step: deserialize + complete one user task + engine steps + serialize."""
    parser = SpiffBpmnParser()
    parser.add_dmn_file(str(ROOT / "bpmn" / "vetting_eligibility.dmn"))
    parser.add_bpmn_file(str(ROOT / "bpmn" / "pre_appointment_vetting.bpmn"))
    spec = parser.get_spec("pre_appointment_vetting")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    engine = _FactsEngine()
    engine.environment.globals.update({"deadline": lambda key: "P5D"})
    workflow = BpmnWorkflow(spec, script_engine=engine)
    workflow.task_tree.data.update({"cadre_id": "B1", **START["data"]})
    workflow.do_engine_steps()
    state = serializer.serialize_json(workflow)
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        loaded = serializer.deserialize_json(state)
        loaded.script_engine = engine
        task = next(t for t in loaded.get_tasks(state=TaskState.READY, manual=True)
                    if t.task_spec.bpmn_id == "solicit_family_opinion")
        task.data.update(opinion="positive")
        task.run()
        loaded.do_engine_steps()
        serializer.serialize_json(loaded)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    figures = bench_http(args.cases)
    raw = bench_raw_spiff(args.rounds)
    print("CadreFlow over HTTP, SQLite, `cadreflow serve` (waitress, 8 threads), vetting process")
    print(f"  start a case, median:          {figures['start_ms']:7.2f} ms   (n={args.cases})")
    print(f"  complete one task, median:     {figures['complete_ms']:7.2f} ms   (n={args.cases})")
    print(f"  completions/s with 4 clients:  {figures['throughput_4_clients']:7.1f}")
    print(f"raw SpiffWorkflow step (load + run + save), median: {raw:.2f} ms   (n={args.rounds})")
    print(f"  HTTP completion / raw step:    {figures['complete_ms'] / raw:7.2f}x   (target <= 6x)")


if __name__ == "__main__":
    main()
