"""Benchmark: CadreFlow over real HTTP on SQLite, beside the raw SpiffWorkflow step on the same BPMN.

Prints: median time to start a vetting case, median time to complete one task, completions per
second with 4 concurrent clients, and the raw step (deserialize + complete + run + serialize with
SpiffWorkflow's own serializer and default script engine). Not a test: it asserts nothing.

    python bench/bench_http.py [--cases 60] [--rounds 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from service.cli import main; main()"]
START = {"process": "pre_appointment_vetting", "cadre_id": "b1",
         "data": {"proposed_post": "局长", "selection_method": "competitive"}}
FACTS = {"promotion_ban_until": "", "today": "2026-01-01", "open_accountability": False, "latest_grade": ""}


class Client:
    """A keep-alive JSON client, one per thread."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.token = token

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"null")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workdir: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "CADREFLOW_DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}"}
    subprocess.run([*CLI, "init-db"], env=env, check=True, capture_output=True)
    subprocess.run([*CLI, "create-user", "bench", "--password", "pw", "--role", "org_dept"], env=env,
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--threads", "8"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def login(port: int) -> str:
    status, body = Client(port).call("POST", "/api/auth/token", {"username": "bench", "password": "pw"})
    assert status == 200, body
    return body["token"]


def timed(call) -> float:
    began = time.perf_counter()
    status, body = call()
    elapsed = time.perf_counter() - began
    assert status in (200, 201), body
    return elapsed


def family_task(case: dict) -> str:
    return next(t["id"] for t in case["open_tasks"] if t["element_id"] == "solicit_family_opinion")


def bench_http(port: int, token: str, cases: int) -> dict[str, float]:
    client = Client(port, token)
    client.call("POST", "/api/cadres", {"id": "b1", "name": "测", "unit": "局", "post": "副局长",
                                        "post_level": "leading", "post_started_on": "2018-01-01"})
    for _ in range(5):  # warm the spec cache and the connection
        client.call("POST", "/api/cases", START)
    started, start_times = [], []
    for _ in range(cases):
        start_times.append(timed(lambda: _record(client.call("POST", "/api/cases", START), started)))
    complete_times = [timed(lambda case=case: client.call(
        "POST", f"/api/tasks/{family_task(case)}/complete", {"data": {"opinion": "positive"}})) for case in started]
    return {"start_ms": statistics.median(start_times) * 1000,
            "complete_ms": statistics.median(complete_times) * 1000,
            "throughput_4_clients": completions_per_second(port, token, clients=4, per_client=cases // 2)}


def _record(result: tuple[int, dict], into: list) -> tuple[int, dict]:
    into.append(result[1])
    return result


def completions_per_second(port: int, token: str, clients: int, per_client: int) -> float:
    setup = Client(port, token)
    task_ids = [[family_task(setup.call("POST", "/api/cases", START)[1]) for _ in range(per_client)]
                for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(ids: list[str]) -> None:
        client = Client(port, token)
        barrier.wait()
        for task_id in ids:
            status, body = client.call("POST", f"/api/tasks/{task_id}/complete", {"data": {"opinion": "neutral"}})
            assert status == 200, body

    threads = [threading.Thread(target=work, args=(ids,)) for ids in task_ids]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return clients * per_client / (time.perf_counter() - began)


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
    env_globals = {"deadline": lambda key: "P5D"}
    engine.environment.globals.update(env_globals)
    workflow = BpmnWorkflow(spec, script_engine=engine)
    workflow.task_tree.data.update({"cadre_id": "b1", **START["data"]})
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
    with tempfile.TemporaryDirectory() as workdir:
        server, port = start_server(Path(workdir))
        try:
            figures = bench_http(port, login(port), args.cases)
        finally:
            server.terminate()
            server.wait()
    raw = bench_raw_spiff(args.rounds)
    print("CadreFlow over HTTP, SQLite, `cadreflow serve` (waitress, 8 threads), vetting process")
    print(f"  start a case, median:          {figures['start_ms']:7.2f} ms   (n={args.cases})")
    print(f"  complete one task, median:     {figures['complete_ms']:7.2f} ms   (n={args.cases})")
    print(f"  completions/s with 4 clients:  {figures['throughput_4_clients']:7.1f}")
    print(f"raw SpiffWorkflow step (load + run + save), median: {raw:.2f} ms   (n={args.rounds})")
    print(f"  HTTP completion / raw step:    {figures['complete_ms'] / raw:7.2f}x   (target <= 6x)")


if __name__ == "__main__":
    main()
