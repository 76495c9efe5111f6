"""The parent's side of the step executors: start them, hand out one per step, kill overrunning ones.

Workers are shared by every app of a process (tests build hundreds of apps; a web process builds
one) and never by two processes: a forked child starts a pool of its own. A worker that overruns
its step's time budget, crashes, breaks the protocol or asks to retire is killed and replaced;
the step it ran fails, and nothing of it is applied.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from workflows.engine.errors import EngineError, Incident

from .isolation import Limits
from .protocol import Channel, ChannelClosed, ChannelTimeout, ProtocolViolation, decode_error

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# `-I`: no PYTHON* variables, no user site, no current directory on the path; the project root comes first.
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from workflows.executor.worker import main; main(sys.argv[2:])"
# A service-task call from a worker: (operation, params, data, item); `item` is the index of the case
# within a batch of starts, None for a single case.
Relay = Callable[[str, dict[str, Any], dict[str, Any], int | None], Any]
SpecFiles = Callable[[str], dict[str, Any]]
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class PoolSettings:
    """How many executors a process keeps, and the limits each runs under."""

    workers: int = 2  # kept started
    max_workers: int = 4  # started on demand when all are busy
    startup_timeout: float = 60.0
    limits: Limits = field(default_factory=Limits)


class WorkerProcess:
    """One running executor and its pipes."""

    def __init__(self, settings: PoolSettings) -> None:
        self.workdir = tempfile.mkdtemp(prefix="cadreflow-executor-")
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", BOOT, str(PROJECT_ROOT), json.dumps(asdict(settings.limits))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={}, cwd=self.workdir,
            close_fds=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        os.set_blocking(self.process.stdin.fileno(), False)  # a worker that stops reading meets the deadline
        self.channel = Channel(self.process.stdout.fileno(), self.process.stdin.fileno())
        self.broken = False
        self.retiring = False
        try:
            ready, _ = self.channel.receive(time.monotonic() + settings.startup_timeout)
        except (ChannelClosed, ChannelTimeout, ProtocolViolation) as exc:
            self.kill()
            raise EngineError(f"a step executor did not start: {type(exc).__name__}") from exc
        self.isolation = tuple(str(name) for name in ready.get("isolation", ()))

    def call(self, request: dict[str, Any], payload: bytes, relay: Relay | None, spec_files: SpecFiles,
             budget: float, decode: Callable[[dict[str, Any], bytes], Answer], cases: int = 1) -> Answer:
        """Run one request and `decode` its answer; the budget counts the worker's time, not the parent's glue
        calls. A batch of `cases` starts gets the budget once per case, from the `next_case` frame the worker sends
        as it begins each: one case may not spend the others' (a builtin call the sandbox cannot stop held the
        batch, its job's and cadres' rows locked, for all of them). Whatever the worker sends or fails to read, the
        parent is back within `cases` budgets: a worker that overruns one, breaks the protocol or answers with
        values `decode` refuses is killed, the step an incident."""
        try:
            header, body = self._exchange(request, payload, relay, spec_files, budget, cases)
            if header["type"] == "result":
                return decode(header, body)
        except ChannelTimeout:
            self.kill()
            raise Incident(f"the step ran past its time limit of {budget:g} s and was stopped "
                           f"(步骤超过 {budget:g} 秒时限，已被终止)") from None
        except ProtocolViolation as exc:
            self.kill()
            raise Incident(f"the step's executor sent a malformed answer and was stopped "
                           f"(步骤执行进程返回了格式错误的结果，已被终止): {exc}"[:2000]) from None
        except (ChannelClosed, OSError) as exc:
            self.kill()
            raise Incident("the step's executor stopped (memory limit or crash) "
                           f"(步骤执行进程异常终止): {type(exc).__name__}") from None
        except BaseException:  # anything else, mid-exchange: the answer still to come would be read as the next step's
            self.kill()
            raise
        raise decode_error(header)  # a whole error frame: the worker is in step and stays

    def _exchange(self, request: dict[str, Any], payload: bytes, relay: Relay | None, spec_files: SpecFiles,
                  budget: float, cases: int) -> tuple[dict[str, Any], bytes]:
        """Send the request and serve the worker's asks (its process, service tasks, its next case's budget)
        until its answer arrives."""
        deadline = time.monotonic() + budget
        last = deadline + budget * (cases - 1)  # the whole request's, however the worker counts its cases
        begun = 0
        self.channel.send(request, payload, deadline)
        while True:
            header, body = self.channel.receive(deadline)
            kind = header["type"]
            if kind == "need_spec":
                self.channel.send({"type": "spec", **self._files(spec_files, header)}, deadline=deadline)
            elif kind == "next_case":
                begun += 1
                if begun > cases:
                    raise ProtocolViolation(f"more cases begun than the {cases} of the request")
                deadline = min(time.monotonic() + budget, last)
            elif kind == "glue":
                reply, took = self._answer_glue(header, relay)
                deadline, last = deadline + took, last + took
                self.channel.send(reply, deadline=deadline)
            elif kind in ("result", "error"):
                self.retiring = bool(header.get("retire"))
                return header, body
            else:
                raise ProtocolViolation(f"unexpected frame {kind!r}")

    @staticmethod
    def _files(spec_files: SpecFiles, header: dict[str, Any]) -> dict[str, Any]:
        try:
            return spec_files(str(header.get("hash")))
        except KeyError:
            raise ProtocolViolation("asked for a process this step does not use") from None

    def _answer_glue(self, header: dict[str, Any], relay: Relay | None) -> tuple[dict[str, Any], float]:
        """The answer to a service-task call, and how long it took (added back to the worker's budget)."""
        started = time.monotonic()
        try:
            if relay is None:
                raise LookupError("this operation runs no service tasks")
            item = header.get("item") if isinstance(header.get("item"), int) else None
            value = relay(str(header["name"]), dict(header["params"]), dict(header["data"]), item)
            reply = {"type": "glue_result", "value": value}
        except Exception as exc:  # the glue's failure is the case's incident, reported by the worker
            reply = {"type": "glue_error", "message": f"{type(exc).__name__}: {exc}"}
        return reply, time.monotonic() - started

    @property
    def usable(self) -> bool:
        return not (self.broken or self.retiring) and self.process.poll() is None

    def kill(self) -> None:
        """Stop the process for good (SIGKILL: designer code cannot catch or delay it)."""
        self.broken = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def close(self) -> None:
        """Let the worker finish: closing its input ends its loop."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class ExecutorPool:
    """Executors of one process, handed out one step at a time."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self._idle: list[WorkerProcess] = []
        self._count = 0
        self._ready = threading.Condition()
        self._closed = False

    @contextmanager
    def worker(self) -> Iterator[WorkerProcess]:
        """A worker for one step; a broken or retiring one is replaced afterwards."""
        worker = self._acquire()
        try:
            yield worker
        finally:
            self._release(worker)

    def _acquire(self) -> WorkerProcess:
        with self._ready:
            while not self._idle and self._count >= self.settings.max_workers:
                self._ready.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return WorkerProcess(self.settings)
        except BaseException:
            self._forget()
            raise

    def _release(self, worker: WorkerProcess) -> None:
        if worker.usable and not self._closed:
            with self._ready:
                self._idle.append(worker)
                self._ready.notify()
            return
        worker.kill()
        self._forget()
        if not self._closed:
            threading.Thread(target=self.warm, daemon=True).start()

    def _forget(self) -> None:
        with self._ready:
            self._count -= 1
            self._ready.notify()

    def warm(self) -> None:
        """Start workers until the kept number runs (in the background after a replacement)."""
        while True:
            with self._ready:
                if self._closed or self._count >= self.settings.workers:
                    return
                self._count += 1
            try:
                worker = WorkerProcess(self.settings)
            except EngineError:
                self._forget()
                return
            self._release(worker)

    def close(self) -> None:
        """Stop every idle worker (busy ones are killed when they come back)."""
        self._closed = True
        with self._ready:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_POOLS: dict[tuple[int, PoolSettings], ExecutorPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(settings: PoolSettings) -> ExecutorPool:
    """The process-wide pool for these settings (a forked child gets its own)."""
    key = (os.getpid(), settings)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ExecutorPool(settings)
        return pool


@atexit.register
def _close_pools() -> None:
    for (pid, _), pool in list(_POOLS.items()):
        if pid == os.getpid():
            pool.close()
