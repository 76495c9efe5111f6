"""Profile one task completion of the minimal approval process through the use case (no HTTP).

Counts the SQL statements each completion sends (SQLAlchemy `before_cursor_execute` events), on PostgreSQL also
its round trips (libpq's trace), and prints the top of a cProfile of `--rounds` completions, so a change to the
hot path can be judged by what it removes. Not a test: it asserts nothing.

    python bench/profile_step.py [--rounds 300] [--database sqlite|postgresql+psycopg://postgres@127.0.0.1]
                                 [--statements] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_http  # noqa: E402 - after the path is set
from bench.bench_scale import database, drop  # noqa: E402
from service import create_app  # noqa: E402
from service.cli import init_database  # noqa: E402
from service.usecases import cadres, cases, processes, tasks, users  # noqa: E402
from service.usecases.context import SYSTEM, Actor  # noqa: E402
from tests.sql import round_trips  # noqa: E402

BENCH = Path(__file__).resolve().parent
PASSWORD = "measure-only-pw"
ORG = Actor("bench", frozenset({"org_dept"}))
CADRE = {"id": "B1", "name": "基准", "unit": "县局", "post": "副局长", "post_level": "leading",
         "post_started_on": "2020-01-01"}


def approval_app(url: str, executor_workers: int = 1) -> Flask:
    """An app on `url` with the approval process deployed, org_dept allowed to start it, one cadre."""
    app = create_app({"DATABASE_URL": url, "START_ROLES": {"approval": ["org_dept"]},
                      "EXECUTOR_WORKERS": executor_workers})
    services = app.extensions["cadreflow"]
    init_database(services)
    processes.deploy_version(services, SYSTEM, "approval", (BENCH / "approval.bpmn").read_bytes(), {})
    cadres.create_cadre(services, SYSTEM, CADRE)
    return app


def signed_in_client(url: str, cases_to_open: int) -> tuple[Flask, FlaskClient, dict[str, str], list[str]]:
    """`approval_app(url)`, its test client, the bearer header of a user of org_dept logged in through the API, and
    the first task of each of `cases_to_open` cases that user opened there: what a completion over the app needs."""
    app = approval_app(url)
    users.create_user(app.extensions["cadreflow"], "bench", PASSWORD, ["org_dept"])
    client = app.test_client()
    token = client.post("/api/auth/token", json={"username": "bench", "password": PASSWORD}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    task_ids = [client.post("/api/cases", json=bench_http.START, headers=headers).json["open_tasks"][0]["id"]
                for _ in range(cases_to_open)]
    return app, client, headers, task_ids


def approval_services(url: str, executor_workers: int = 1):
    """The services of `approval_app(url)`."""
    return approval_app(url, executor_workers).extensions["cadreflow"]


def open_tasks(services, count: int) -> list[str]:
    return [cases.start_case(services, ORG, "approval", "B1", {})["open_tasks"][0]["id"] for _ in range(count)]


class StatementCounter:
    def __init__(self, engines) -> None:
        self.statements: list[str] = []
        for engine in engines:
            event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--statements", action="store_true", help="print the statements of one completion")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        backend = "sqlite" if args.database == "sqlite" else "postgres"
        url = database(backend, Path(workdir))
        try:
            services = approval_services(url)
            ids = open_tasks(services, args.rounds + 20)
            for task_id in ids[:20]:  # warm caches and the executor
                tasks.complete_task(services, ORG, task_id, {"approve": True})
            half = len(ids[21:]) // 2
            plain = []
            for task_id in ids[21 + half:]:
                began = time.perf_counter()
                tasks.complete_task(services, ORG, task_id, {"approve": True})
                plain.append(time.perf_counter() - began)
            ids = ids[:21 + half]
            counter = StatementCounter({services.db.write_engine, services.db.read_engine} if services.db.is_sqlite
                                       else {services.db.write_engine})  # PG: reads share the write pool
            with nullcontext([]) if services.db.is_sqlite else round_trips(services.db) as ends:
                tasks.complete_task(services, ORG, ids[20], {"approve": True})
            one = list(counter.statements)
            if ends:
                print(f"{backend}: {len(ends)} round trips per completion, each ended by: {'; '.join(ends)}")
            profile, times = cProfile.Profile(), []
            for task_id in ids[21:]:
                began = time.perf_counter()
                profile.enable()
                tasks.complete_task(services, ORG, task_id, {"approve": True})
                profile.disable()
                times.append(time.perf_counter() - began)
            print(f"{backend}: {len(one)} SQL statements per completion; "
                  f"median {statistics.median(times) * 1000:.2f} ms (profiled, n={len(times)})")
            print(f"  unprofiled median {statistics.median(plain) * 1000:.2f} ms (n={len(plain)})")
            kinds = Counter(statement.split()[0] for statement in one)
            print("  " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
            if args.statements:
                for statement in one:
                    print("   ", " ".join(statement.split())[:160])
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
            services.db.dispose()
        finally:
            drop(url)


if __name__ == "__main__":
    main()
