"""Scale benchmark (not a test): throughput by clients and web workers, the inbox at size, history cost.

On SQLite and PostgreSQL:
  1. completions per second, p50 and p99 latency, with 1, 4 and 8 clients against gunicorn with 1, 2
     and 4 worker processes (vetting opinion tasks, keep-alive HTTP);
  2. the inbox query (one role's 50 most urgent open tasks) at 100,000 open and 1,000,000 closed tasks;
  3. the cost of one step of a case as its history grows (1, 10 and 50 passes around a loop).

    python bench/bench_scale.py [--per-client 160] [--skip-inbox] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cluster import Client, Cluster, command_cpu_seconds, tree_cpu_seconds  # noqa: E402 - after the path is set
from service import create_app  # noqa: E402
from service.usecases import cases, tasks  # noqa: E402
from service.usecases.context import Actor  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1"
START = {"process": "pre_appointment_vetting", "cadre_id": "B1",
         "data": {"proposed_post": "局长", "selection_method": "competitive"}}
CADRE = {"id": "B1", "name": "基准", "unit": "县局", "post": "副局长", "post_level": "leading",
         "post_started_on": "2020-01-01"}
ANSWERS = {"democratic_evaluation": {"votes_approve": 5, "votes_basic": 0, "votes_disapprove": 0}}
CORES = os.cpu_count() or 1
ROLES = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head"]


def database(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    import psycopg

    name = f"cfbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES}/{name}"


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# 1. Throughput ---------------------------------------------------------------------------------


# Completions per client in a timed run, and in the untimed warm-up before it. A web process starts its
# third and fourth step executor (about 100 ms each) only when three steps meet in it, which may first
# happen well into a run. With 40 per client (1.3 s at 8 clients) six runs gave 233-252/s with p99 up to
# 150 ms; with 160, four runs gave 256-282/s with p99 under 50 ms (4 December 2026, same host).
PER_CLIENT = 160
WARM_UP = 40


@dataclass
class Run:
    """One throughput run: completions per second, every latency, and the CPU milliseconds each completion
    cost the web processes with their step executors, PostgreSQL, and the benchmark's own clients."""

    rate: float
    latencies: list[float]
    cpu_ms: dict[str, float]

    @property
    def cpu_per_completion(self) -> float:
        """CPU milliseconds one completion cost, all parts together."""
        return sum(self.cpu_ms.values())

    def ceiling(self, cores: int) -> float:
        """Completions per second these cores could give at this CPU cost, were they never idle."""
        return cores * 1000 / self.cpu_per_completion


def throughput(backend: str, per_client: int, worker_counts: tuple[int, ...] = (1, 2, 4),
               client_counts: tuple[int, ...] = (1, 4, 8)) -> dict[tuple[int, int], Run]:
    """Throughput runs by (web worker processes, clients), each after an untimed warm-up at its concurrency
    and printed as it is measured."""
    runs = {}
    with tempfile.TemporaryDirectory() as workdir:
        url = database(backend, Path(workdir))
        cluster = Cluster(url, Path(workdir))
        cluster.cli("init-db")
        cluster.cli("create-user", "bench", "--password", "measure-only-pw", "--role", "org_dept")
        try:
            for workers in worker_counts:
                web = cluster.web(workers=workers, threads=4)
                token = login(web.port)
                with Client([web.port], token) as client:
                    client.call("POST", "/api/cadres", CADRE)
                for clients in client_counts:
                    # Untimed first: at this concurrency each web process starts more step executors, each
                    # of which parses the process once; a running service has long paid for that.
                    run_clients(web.port, token, clients, WARM_UP, web.popen.pid)
                    runs[workers, clients] = run_clients(web.port, token, clients, per_client, web.popen.pid)
                    _report(backend, workers, clients, runs[workers, clients])
                web.kill()
        finally:
            cluster.stop()
            drop(url)
    return runs


def login(port: int) -> str:
    with Client([port]) as client:
        return client.call("POST", "/api/auth/token", {"username": "bench", "password": "measure-only-pw"})[1]["token"]


def run_clients(port: int, token: str, clients: int, per_client: int, server_pid: int) -> Run:
    """Completions with `clients` keep-alive clients at once, against the server whose process tree is
    `server_pid`."""
    work = [prepare_tasks(port, token, per_client) for _ in range(clients)]
    latencies: list[float] = []
    lock, barrier = threading.Lock(), threading.Barrier(clients + 1)

    def client_thread(ids: list[tuple[str, str]]) -> None:
        mine = []
        with Client([port], token) as client:
            barrier.wait()
            for task_id, element in ids:
                began = time.perf_counter()
                status, body, _ = client.call("POST", f"/api/tasks/{task_id}/complete",
                                              {"data": ANSWERS.get(element, {"opinion": "neutral"})})
                mine.append(time.perf_counter() - began)
                assert status == 200, body
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client_thread, args=(ids,)) for ids in work]
    for thread in threads:
        thread.start()
    cpu_before = _cpu_shares(server_pid)
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    spent = {part: (after - cpu_before[part]) * 1000 / len(latencies)
             for part, after in _cpu_shares(server_pid).items()}
    return Run(len(latencies) / elapsed, latencies, spent)


def _cpu_shares(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the web server's process tree, PostgreSQL, and this benchmark process."""
    mine = os.times()
    return {"web + executors": tree_cpu_seconds(server_pid), "PostgreSQL": command_cpu_seconds("postgres"),
            "clients": mine.user + mine.system}


def prepare_tasks(port: int, token: str, count: int) -> list[tuple[str, str]]:
    """Open enough vetting cases for `count` task completions (four parallel tasks per case)."""
    ids: list[tuple[str, str]] = []
    with Client([port], token) as client:
        while len(ids) < count:
            case = client.call("POST", "/api/cases", START)[1]
            ids.extend((t["id"], t["element_id"]) for t in case["open_tasks"])
    return ids[:count]


def _report(backend: str, workers: int, clients: int, run: Run) -> None:
    latencies = sorted(run.latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    cpu = ", ".join(f"{part} {ms:.2f}" for part, ms in run.cpu_ms.items())
    print(f"  {backend:9} web workers {workers}  clients {clients}:  {run.rate:7.1f} completions/s   "
          f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (n={len(latencies)})\n"
          f"            CPU per completion (ms): {cpu}; "
          f"ceiling on {CORES} cores at that cost: {run.ceiling(CORES):.0f}/s", flush=True)


# 2. The inbox at size --------------------------------------------------------------------------


def inbox_at_size(backend: str, open_tasks: int, closed_tasks: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        url = database(backend, Path(workdir))
        try:
            app = create_app({"DATABASE_URL": url})
            services = app.extensions["cadreflow"]
            from service.cli import init_database

            init_database(services)
            began = time.perf_counter()
            _bulk_tasks(url, open_tasks, closed_tasks)
            loaded = time.perf_counter() - began
            actor = Actor("bench", frozenset({"org_dept"}))
            times = []
            for _ in range(30):
                began = time.perf_counter()
                page = tasks.list_tasks(services, actor, {"per_page": 50, "page": 1})
                times.append(time.perf_counter() - began)
            assert len(page) == 50
            print(f"  {backend:9} inbox, 50 most urgent of one role at {open_tasks:,} open and {closed_tasks:,} "
                  f"closed tasks: median {statistics.median(times) * 1000:.2f} ms, "
                  f"p90 {sorted(times)[26] * 1000:.2f} ms   (rows loaded in {loaded:.0f} s)", flush=True)
            services.db.dispose()
        finally:
            drop(url)


def _bulk_tasks(url: str, open_tasks: int, closed_tasks: int) -> None:
    """Cases and task rows straight into the tables (the read model is all the inbox touches)."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    case_count = (open_tasks + closed_tasks) // 100
    with engine.begin() as connection:
        version_id = connection.execute(text("SELECT id FROM process_versions ORDER BY id LIMIT 1")).scalar()
        connection.execute(text("INSERT INTO cadres (id, name, unit, post, post_level) "
                                "VALUES ('B1', 'b', 'u', 'p', 'leading')"))
        connection.execute(text(
            "INSERT INTO cases (id, process_key, process_version_id, cadre_id, status, data, state, version, "
            "created_by, created_at, updated_at) VALUES (:id, 'bench', :v, 'B1', 'open', '{}', '{}', 1, 'b', "
            ":now, :now)"), [{"id": i, "v": version_id, "now": now} for i in range(1, case_count + 1)])
        batch = []
        for n in range(open_tasks + closed_tasks):
            is_open = n < open_tasks
            batch.append({"id": uuid.UUID(int=n + 1).hex, "case": n % case_count + 1, "v": version_id,
                          "role": ROLES[n % len(ROLES)], "status": "open" if is_open else "completed",
                          "created": now - timedelta(minutes=n % 10_000),
                          "due": now + timedelta(minutes=(n * 7919) % 100_000 - 20_000)})
            if len(batch) == 20_000:
                _insert_tasks(connection, batch)
                batch = []
        if batch:
            _insert_tasks(connection, batch)
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()


def _insert_tasks(connection, batch: list[dict]) -> None:
    connection.execute(text(
        "INSERT INTO tasks (id, case_id, process_key, process_version_id, element_id, name, role, status, "
        "created_at, due_at, overdue) VALUES (:id, :case, 'bench', :v, 'solicit_family_opinion', '向家属征求意见', "
        ":role, :status, :created, :due, false)"), batch)


# 3. Cost of a step as history grows ------------------------------------------------------------


def step_cost_by_history() -> dict[int, float]:
    """Complete rectify_findings (rectified = false loops back) through the use case, on SQLite."""
    with tempfile.TemporaryDirectory() as workdir:
        app = create_app({"DATABASE_URL": f"sqlite:///{Path(workdir) / 's.sqlite3'}"})
        services = app.extensions["cadreflow"]
        from service.cli import init_database
        from service.usecases import cadres, users

        init_database(services)
        users.create_user(services, "auditor", "measure-only-pw", ["audit"])
        admin = Actor("admin", frozenset({"admin"}))
        cadres.create_cadre(services, admin, CADRE)
        case = cases.start_case(services, admin, "departure_audit", "B1",
                                {"departure_reason": "transfer", "planned_departure_on": "2027-01-01"})
        case = _do(services, admin, case, "assign_audit_team", {"team_lead": "auditor"})
        case = _do(services, Actor("auditor", frozenset({"audit"})), case, "audit_fieldwork",
                   {"findings": "minor", "amount_involved": 0, "report_ref": "R1"})
        seconds: dict[int, float] = {}
        size: dict[int, int] = {}
        for passes in range(1, 53):
            began = time.perf_counter()
            case = _do(services, admin, case, "rectify_findings", {"rectified": False})
            seconds[passes] = time.perf_counter() - began
            size[passes] = len(_state(services, case["id"]))
        first = statistics.median(seconds[p] for p in (1, 2, 3))
        costs = {}
        for at in (1, 10, 50):
            costs[at] = statistics.median(seconds[p] for p in range(max(1, at - 1), at + 2))
            print(f"  one step at loop pass {at:2}: {costs[at] * 1000:6.2f} ms ({costs[at] / first:4.2f}x the first; "
                  f"saved state {size[at]:,} bytes)", flush=True)
        services.db.dispose()
    return costs


def _do(services, actor: Actor, case: dict, element: str, data: dict) -> dict:
    task = next(t for t in case["open_tasks"] if t["element_id"] == element)
    return tasks.complete_task(services, actor, task["id"], data)


def _state(services, case_id: int) -> str:
    from service.db.models import Case

    with services.db.unit_of_work(write=False) as session:
        return session.get(Case, case_id).state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-client", type=int, default=PER_CLIENT)
    parser.add_argument("--open-tasks", type=int, default=100_000)
    parser.add_argument("--closed-tasks", type=int, default=1_000_000)
    parser.add_argument("--skip-inbox", action="store_true")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    backends = args.backends.split(",")
    print("1. Throughput over HTTP (gunicorn, 4 threads per worker process; clients and server share 2 cores)")
    for backend in backends:
        throughput(backend, args.per_client)
    if not args.skip_inbox:
        print("2. Inbox query at size")
        for backend in backends:
            inbox_at_size(backend, args.open_tasks, args.closed_tasks)
    print("3. Per-step cost as a case's history grows (SQLite, use case in process)")
    step_cost_by_history()


if __name__ == "__main__":
    main()
