"""Benchmark: the annual assessment opened for a county of cadres at once, then the inbox at that size.

Creates N leading cadres (100,000 by default) on PostgreSQL, runs a bulk start of `annual_assessment`
for the year (batches, as `cadreflow bulk-start` does, the two cores each working a job half), and
prints the time; then times the inbox query (the org_dept role's 50 most urgent tasks) on the result.
Target: under 5 minutes, and the inbox under 20 ms. With fewer cadres it also prints the time 100,000
would take at the same rate, labelled as an extrapolation. Not a test: it asserts nothing.

    python bench/bench_bulk.py [--cadres 100000] [--database postgresql+psycopg://postgres@127.0.0.1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cluster import tree_cpu_seconds  # noqa: E402 - after the path is set
from service import create_app  # noqa: E402
from service.cli import init_database  # noqa: E402
from service.usecases import bulk, tasks, users  # noqa: E402
from service.usecases.context import Actor  # noqa: E402

ORG = Actor("org_dept", frozenset({"org_dept"}))


def make_database(server: str) -> str:
    name = f"bench_bulk_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def add_cadres(url: str, count: int) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO cadres (id, name, unit, post, post_level, post_started_on) "
                                "SELECT 'b' || lpad(n::text, 7, '0'), '干部' || n, '第' || (n % 40) || '单位', "
                                "'局长', 'leading', DATE '2018-01-01' FROM generate_series(1, :count) AS n"),
                           {"count": count})
    engine.dispose()


def profiled_run(services, count: int, top: int) -> None:
    """One job worked in this thread under cProfile, with the SQL statements it sent."""
    import cProfile
    import pstats

    statements: list[str] = []
    event.listen(services.db.write_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    job = bulk.create_job(services, ORG, "annual_assessment", {"year": 2026}, None, "field:year")
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    _work(services, job["id"])
    profile.disable()
    seconds = time.perf_counter() - began
    print(f"profiled, one thread: {count:,} cases in {seconds:.1f} s; {len(statements) / count:.2f} SQL statements "
          f"per case ({len(statements):,} in all, batches of {bulk.BATCH})")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(top)


def run_halves(services, count: int) -> tuple[float, float]:
    """Two jobs over the two halves of the cadres, worked at once (one per core); seconds taken, and CPU
    seconds this process and its step executors used (PostgreSQL's own not counted)."""
    half = f"b{count // 2:07d}"
    jobs = [bulk.create_job(services, ORG, "annual_assessment", {"year": 2026}, f"id <= {half!r}", "field:year"),
            bulk.create_job(services, ORG, "annual_assessment", {"year": 2026}, f"id > {half!r}", "field:year")]
    began, cpu = time.perf_counter(), tree_cpu_seconds(os.getpid())
    workers = [threading.Thread(target=_work, args=(services, job["id"])) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began, tree_cpu_seconds(os.getpid()) - cpu


def _work(services, job_id: int) -> None:
    while bulk.run_batch(services, job_id) is not None:
        pass


def inbox_ms(services) -> tuple[float, float]:
    """Median wall and mean CPU milliseconds of the inbox query (CPU: this process only)."""
    samples, cpu = [], time.process_time()
    for _ in range(30):
        began = time.perf_counter()
        tasks.list_tasks(services, ORG, {"page": 1, "per_page": 50})
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), (time.process_time() - cpu) / 30 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cadres", type=int, default=100_000)
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP",
                        help="profile one thread instead, printing the TOP functions")
    options = parser.parse_args()
    if options.profile:
        url, services = prepared(options.database, options.cadres)
        profiled_run(services, options.cadres, options.profile)
        services.db.dispose()
        drop_database(options.database, url)
        return
    figures = bulk_figures(options.database, options.cadres)
    opened, seconds = int(figures["opened"]), figures["seconds"]
    print(f"bulk start of annual_assessment: {opened:,} cases for {options.cadres:,} cadres in {seconds:.1f} s "
          f"({opened / seconds:.0f} cases/s; target: 100,000 in under 300 s)")
    print(f"  CPU of the service and its executors: {figures['cpu'] / opened * 1000:.2f} ms per case")
    if options.cadres != FULL:
        print(f"  EXTRAPOLATED, not measured: 100,000 at this rate would take {FULL / (opened / seconds):.0f} s")
    print(f"inbox (org_dept, 50 most urgent of {opened:,} open tasks): median {figures['inbox_ms']:.1f} ms, "
          f"CPU {figures['inbox_cpu_ms']:.1f} ms (target: under 20 ms)")


FULL = 100_000


def prepared(server: str, cadres: int):
    """A fresh database on `server` with the schema, the processes and `cadres` leading cadres."""
    url = make_database(server)
    app = create_app({"DATABASE_URL": url, "EXECUTOR_WORKERS": 2})
    services = app.extensions["cadreflow"]
    init_database(services)
    # Each batch runs as its author's account as it stands then: the author must be a real org_dept user.
    users.create_user(services, ORG.username, "measure-only-pw", sorted(ORG.roles))
    add_cadres(url, cadres)
    return url, services


def bulk_figures(server: str, cadres: int) -> dict[str, float]:
    """A bulk start for `cadres` cadres in a fresh database: cases opened, seconds, CPU seconds (service and
    executors), and the inbox's median and CPU ms at that size (after ANALYZE, as autovacuum would)."""
    url, services = prepared(server, cadres)
    try:
        seconds, cpu = run_halves(services, cadres)
        jobs = [bulk.get_job(services, ORG, job_id) for job_id in (1, 2)]
        unfinished = [job for job in jobs if job["status"] != "done"]
        if unfinished:  # a figure for a job that stopped would be a rate of nothing
            raise SystemExit(f"bulk start job {unfinished[0]['id']} ended {unfinished[0]['status']}: "
                             f"{unfinished[0]['errors'][-1:]}")
        opened = sum(job["opened"] for job in jobs)
        with services.db.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        inbox, inbox_cpu = inbox_ms(services)
        return {"opened": opened, "seconds": seconds, "cpu": cpu, "inbox_ms": inbox, "inbox_cpu_ms": inbox_cpu}
    finally:
        services.db.dispose()
        drop_database(server, url)


def drop_database(server: str, url: str) -> None:
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
