"""Benchmark: the physical floor under one HTTP task completion, to judge what issue 14's 6x can reach.

A completion of the minimal approval process (bench/approval.bpmn) cannot cost less than the sum of
three things it must do, each measured here with no CadreFlow Python around it:

  1. one HTTP round trip on a keep-alive connection: waitress (as `cadreflow serve` runs it) serving a
     WSGI app that only parses the JSON body and sends a reply of the size a completion sends;
  2. the engine step in an isolated step executor (designer code never runs in the web process);
  3. the SQL statements a real completion sends (token lookup, case lock, reads under the lock, writes,
     notices), captured from completions through the app and replayed with the bare database driver
     (sqlite3, psycopg), each replay in its own transaction ending in COMMIT, as the service's does. The
     engine step runs (untimed) between the reads under the lock and the writes, where a completion runs
     it: the writes then find the CPU's caches holding the step's memory, not the database's, and cost
     more than the same statements sent back to back (printed beside, for comparison).

Their sum beside the raw SpiffWorkflow step says how much of the 6x budget is left for everything else
(the service's own Python: routing, form checks, the ORM, building the reply). Not a test: it asserts
nothing; machines are shared and noisy, so each figure is a median.

    python bench/bench_floor.py [--cases 100] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_http  # noqa: E402 - after the path is set
from bench.bench_scale import database, drop  # noqa: E402
from bench.cluster import Client, free_port, wait_for_port  # noqa: E402
from bench.profile_step import signed_in_client  # noqa: E402
from service.db.uow import SQLITE_PRAGMAS  # noqa: E402

# A WSGI app that does what no completion can skip on the HTTP side: read and parse the JSON body, and
# answer with a JSON reply of the completion's size. Served by waitress with the threads `serve` uses.
BARE_SERVER = """
import json, sys, waitress
REPLY = json.dumps({"reply": "x" * int(sys.argv[2])}).encode()
def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    json.loads(environ["wsgi.input"].read(length) or b"null")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(REPLY)))])
    return [REPLY]
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=8, _quiet=True)
"""


def bare_http(reply_bytes: int, rounds: int) -> float:
    """Median milliseconds of one POST with a completion's body to a server that does nothing else."""
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        log = Path(workdir) / "bare.log"
        with log.open("wb") as output:
            server = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port), str(reply_bytes)],
                                      stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, server, log)
            with Client([port], "a-token-of-the-usual-length-" + "x" * 20) as client:
                times = [bench_http.timed(client, "POST", "/api/tasks/x/complete", bench_http.ANSWER)
                         for _ in range(20 + rounds)][20:]  # the first 20 warm the connection
        finally:
            server.kill()
            server.wait()
    return statistics.median(times) * 1000


@dataclass
class Captured:
    """The statements of one completion: those of reading connections (the token lookup) and those of its
    writing transaction, with their parameters as the driver received them."""

    reads: list[tuple[str, Any]] = field(default_factory=list)
    writes: list[tuple[str, Any]] = field(default_factory=list)
    step_at: int = 0  # how many of its writes went before its engine step (those read under the case's lock)


class _Undo(Exception):
    """Raised in place of a completion's commit, so the capture leaves the database as it found it."""


def capture_completions(url: str, cases: int) -> tuple[list[Captured], int]:
    """The statements of `cases` real completions through the app (test client), each rolled back, and the
    size of a completion's reply in bytes (taken from one more completion, committed)."""
    app, client, headers, task_ids = signed_in_client(url, cases + 1)
    services = app.extensions["cadreflow"]
    reply = client.post(f"/api/tasks/{task_ids.pop()}/complete", json=bench_http.ANSWER, headers=headers)
    assert reply.status_code == 200, reply.json
    captured: list[Captured] = []
    write_engine = services.db.write_engine

    last: list[Any] = [None]

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if last[0] == (cursor, statement):
            return  # a reading engine's options share the writing engine's events: each is seen twice
        last[0] = (cursor, statement)
        reading = conn.engine is not write_engine or conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        (captured[-1].reads if reading else captured[-1].writes).append((statement, parameters))

    engines = {write_engine, services.db.read_engine.engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    commit = Session.commit

    def undo(session: Session) -> None:
        session.flush()  # what the commit would have written is written and captured, then rolled back
        raise _Undo

    Session.commit = undo  # type: ignore[method-assign,assignment]
    complete = services.runner.complete

    def marking_the_step(*args: Any, **kwargs: Any) -> Any:
        captured[-1].step_at = len(captured[-1].writes)
        return complete(*args, **kwargs)

    services.runner.complete = marking_the_step  # type: ignore[method-assign]
    logging.disable(logging.CRITICAL)  # each undone completion is logged as a failed request
    try:
        for task_id in task_ids:
            captured.append(Captured())
            with contextlib.suppress(_Undo):
                client.post(f"/api/tasks/{task_id}/complete", json=bench_http.ANSWER, headers=headers)
    finally:
        logging.disable(logging.NOTSET)
        Session.commit = commit  # type: ignore[method-assign]
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
        services.db.dispose()
    return captured, len(reply.data)


class Stopwatch:
    """Time spent on statements alone: `untimed` runs something in their midst without counting it."""

    def __init__(self) -> None:
        self.spent, self._began = 0.0, time.perf_counter()

    def untimed(self, run: Callable[[], Any]) -> None:
        self.spent += time.perf_counter() - self._began
        run()
        self._began = time.perf_counter()

    def stop(self) -> float:
        return self.spent + time.perf_counter() - self._began


def engine_step() -> Callable[[], Any]:
    """The engine step of a completion of approval.bpmn in an isolated executor, to run between a replay's
    statements where the service runs it: its process, not its time, is what the statements feel (the CPU's
    caches hold the step's memory, not the database's, when the writes come)."""
    from bench.bench_executor import approval, facts
    from workflows.executor import PoolSettings, StepExecutor, shared_pool

    definition = approval()
    executor = StepExecutor(shared_pool(PoolSettings(workers=1, max_workers=1)), {})
    started = executor.start(definition, {"cadre_id": "c1"}, facts)
    return lambda: executor.complete(definition, started.state, started.open_tasks[0].id, {"approve": True}, facts)


def replay_sqlite(path: str, completions: list[Captured], step: Callable[[], Any] | None = None) -> list[float]:
    """Each completion's statements through sqlite3 alone, with the service's pragmas; seconds each. With `step`,
    the engine step runs (untimed) where the completion ran it."""
    reader, writer = (sqlite3.connect(path, isolation_level=None, check_same_thread=False) for _ in range(2))
    for connection in (reader, writer):
        for pragma in SQLITE_PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
    times = []
    for completion in completions:
        clock = Stopwatch()
        for statement, parameters in completion.reads:
            reader.execute(statement, parameters).fetchall()
        if reader.in_transaction:
            reader.execute("COMMIT")
        for index, (statement, parameters) in enumerate(completion.writes):
            if step is not None and index == completion.step_at:
                clock.untimed(step)
            writer.execute(statement, parameters).fetchall()
        writer.execute("COMMIT")
        times.append(clock.stop())
    reader.close()
    writer.close()
    return times


def replay_postgres(url: str, completions: list[Captured], pipelined: bool = False,
                    step: Callable[[], Any] | None = None) -> list[float]:
    """Each completion's statements through psycopg alone: reads in autocommit, writes in one transaction.
    `pipelined`: those before the engine step in one pipeline (the lock and what is read under it, as the
    service sends them), those after it with the COMMIT in another, as if the service needed no answer from
    its writes: the fewest round trips these statements could take. With `step`, the engine step runs
    (untimed) where the completion ran it."""
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=True) as reader, psycopg.connect(_dsn(url)) as writer:
        times = []
        for completion in completions:
            clock = Stopwatch()
            for statement, parameters in completion.reads:
                reader.execute(statement, parameters).fetchall()
            locked, rest = completion.writes[:completion.step_at], completion.writes[completion.step_at:]
            _send(writer, locked, pipelined)
            if step is not None:
                clock.untimed(step)
            _send(writer, rest, pipelined, commit=True)
            times.append(clock.stop())
    return times


def _send(connection: Any, statements: list[tuple[str, Any]], pipelined: bool, commit: bool = False) -> None:
    """Statements one by one, each answered before the next, or all in one pipeline; then the COMMIT."""
    with connection.pipeline() if pipelined else contextlib.nullcontext():
        cursors = [connection.execute(statement, parameters) for statement, parameters in statements]
        if commit:
            connection.commit()
    for cursor in cursors:
        if cursor.description is not None:
            cursor.fetchall()


def _dsn(url: str) -> str:
    """psycopg's form of a SQLAlchemy PostgreSQL URL."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def commit_cost(url: str, rounds: int) -> float:
    """Median milliseconds of a COMMIT after one small write on PostgreSQL (the WAL flush every durable
    completion waits for; synchronous_commit as the server has it)."""
    import psycopg

    with psycopg.connect(_dsn(url)) as connection:
        connection.execute("CREATE TABLE bench_commit (id integer PRIMARY KEY)")
        connection.commit()
        times = []
        for number in range(rounds):
            connection.execute("INSERT INTO bench_commit VALUES (%s)", (number,))
            began = time.perf_counter()
            connection.commit()
            times.append(time.perf_counter() - began)
        connection.execute("DROP TABLE bench_commit")
        connection.commit()
    return statistics.median(times) * 1000


@dataclass(frozen=True)
class Floor:
    """The floor of one completion on one backend, in milliseconds, and how many statements it sends: its
    statements with the engine step run between them as a completion does (`database`), and sent back to back
    (`back_to_back`, the same statements with warm caches). On PostgreSQL also those statements in the service's
    two pipelines around the step, and what a bare COMMIT costs."""

    http: float
    step: float
    database: float
    back_to_back: float
    statements: int
    pipelined: float | None = None
    commit: float | None = None

    @property
    def total(self) -> float:
        return self.http + self.step + self.database

    def words(self, raw: float) -> str:
        said = (f"floor {self.total:.2f} ms = {self.total / raw:.1f}x the raw step: bare HTTP {self.http:.2f} ms, "
                f"isolated step {self.step:.2f} ms, its {self.statements} statements on the bare driver "
                f"{self.database:.2f} ms with the step between them as a completion runs them ({self.back_to_back:.2f}"
                f" ms back to back); the 6x budget leaves {6 * raw - self.total:+.2f} ms for the service's own Python")
        if self.pipelined is not None and self.commit is not None:
            fewest = self.http + self.step + self.pipelined
            said += (f"\n      (a COMMIT alone {self.commit:.2f} ms; the statements in two pipelines around the step "
                     f"{self.pipelined:.2f} ms, a floor of {fewest:.2f} ms = {fewest / raw:.1f}x)")
        return said


def floor(backend: str, cases: int, step: float) -> Floor:
    """The floor of a completion on `backend` (`step`: the isolated step's median, measured once)."""
    postgres = backend != "sqlite"
    run_step = engine_step()
    with tempfile.TemporaryDirectory() as workdir:
        url = database(backend, Path(workdir))
        try:  # each replay commits what it replays: each takes completions of its own
            captured, reply_bytes = capture_completions(url, (3 if postgres else 2) * cases)
            batches = [captured[start:start + cases] for start in range(0, len(captured), cases)]
            if postgres:
                stepped = replay_postgres(url, batches[0], step=run_step)
                back_to_back = replay_postgres(url, batches[1])
                pipelined = _ms(replay_postgres(url, batches[2], pipelined=True, step=run_step))
                commit = commit_cost(url, cases)
            else:
                path = url.removeprefix("sqlite:///")
                stepped, back_to_back = replay_sqlite(path, batches[0], run_step), replay_sqlite(path, batches[1])
                pipelined, commit = None, None
            _check_replayed(url, len(captured) + 1)
        finally:
            drop(url)
    statements = statistics.median(sum(not sql.startswith("BEGIN") for sql, _ in c.reads + c.writes) for c in captured)
    return Floor(bare_http(reply_bytes, cases), step, _ms(stepped), _ms(back_to_back), int(statements),
                 pipelined, commit)


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def _check_replayed(url: str, completions: int) -> None:
    """A replay that wrote nothing (a case's version moved on, so its UPDATE matched no row) would time less
    than a completion does: the tasks completed must be the completions captured, plus the one committed."""
    completed = "SELECT count(*) FROM tasks WHERE status = 'completed'"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            found = connection.execute(completed).fetchone()[0]
    else:
        import psycopg

        with psycopg.connect(_dsn(url)) as connection:
            found = connection.execute(completed).fetchone()[0]  # type: ignore[index]
    if found != completions:
        raise RuntimeError(f"the replay completed {found} tasks, not the {completions} captured: figures void")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    raw = bench_http.bench_raw_spiff(300)[0]
    step = bench_http.bench_executor_step(args.cases)[1]
    print(f"raw SpiffWorkflow step {raw:.2f} ms; 6x budget {6 * raw:.2f} ms")
    for backend in args.backends.split(","):
        print(f"  {backend:8}: {floor(backend, args.cases, step).words(raw)}", flush=True)


if __name__ == "__main__":
    main()
