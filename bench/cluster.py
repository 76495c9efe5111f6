"""Run a local CadreFlow cluster: gunicorn web processes and timer workers on one database.

Used by the load-and-fault test and the scale benchmark. Each process runs in its own session so
it can be killed (SIGKILL, the whole process group) and restarted on the same port.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-c", "from service.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """One process of the cluster, restartable with the same command line."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        if self.port is not None:
            wait_for_port(self.port, self.popen, self.log)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=15)


@dataclass
class Cluster:
    """Web processes and workers sharing one database URL."""

    database_url: str
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        extra = {f"CADREFLOW_{key}": value for key, value in self.settings.items()}
        return {**os.environ, "CADREFLOW_DATABASE_URL": self.database_url, **extra}

    def cli(self, *args: str) -> str:
        done = subprocess.run([*CLI, *args], env=self.env, check=True, capture_output=True, text=True)
        return done.stdout

    def web(self, workers: int = 1, threads: int = 4) -> Process:
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
                   "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "service:create_app()"]
        return self._add(Process(f"web-{port}", command, self.env, self.workdir / f"web-{port}.log", port))

    def serve(self, threads: int = 8) -> Process:
        """`cadreflow serve`: the one-machine default (waitress plus the in-process timer worker)."""
        port = free_port()
        command = [*CLI, "serve", "--port", str(port), "--threads", str(threads)]
        return self._add(Process(f"serve-{port}", command, self.env, self.workdir / f"serve-{port}.log", port))

    def worker(self) -> Process:
        index = sum(p.name.startswith("worker") for p in self.processes)
        return self._add(Process(f"worker-{index}", [*CLI, "worker"], self.env,
                                 self.workdir / f"worker-{index}.log"))

    def _add(self, process: Process) -> Process:
        self.processes.append(process)
        return process.start()

    def stop(self) -> None:
        for process in self.processes:
            process.kill(signal.SIGTERM)


def wait_for_port(port: int, popen: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"process exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


class Client:
    """A keep-alive JSON client over several web processes; moves to the next one when a process dies."""

    def __init__(self, ports: list[int], token: str | None = None) -> None:
        self.ports, self.token, self.index = ports, token, 0
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, retries: int = 20) -> tuple[int, Any, bool]:
        """(status, body, retried): `retried` says an earlier attempt may have reached the server."""
        retried = False
        for _ in range(retries):
            try:
                status, payload = self._once(method, path, body)
                return status, payload, retried
            except (OSError, http.client.HTTPException):
                retried = True
                self._next_server()
                time.sleep(0.1)
        raise RuntimeError(f"{method} {path}: no web process answered")

    def _once(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.ports[self.index], timeout=30)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def _next_server(self) -> None:
        self.close()
        self.index = (self.index + 1) % len(self.ports)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _process_table() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid -> (parent pid, CPU clock ticks used (user + system), command name)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                head, tail = (entry / "stat").read_text().rsplit(")", 1)
            except (OSError, ValueError):
                continue
            fields = tail.split()
            table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), head.split("(", 1)[1])
    return table


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its live descendants (the step executors)."""
    table = _process_table()
    family = {pid}
    while True:
        grown = family | {child for child, (parent, _, _) in table.items() if parent in family}
        if grown == family:
            break
        family = grown
    return sum(table[member][1] for member in family if member in table) / os.sysconf("SC_CLK_TCK")


def command_cpu_seconds(command: str) -> float:
    """CPU time used so far by the live processes of one command name (`postgres`: the server and its
    backends; a backend that exits takes its share with it, so over a pooled run this is a lower bound)."""
    ticks = sum(cpu for _, cpu, name in _process_table().values() if name == command)
    return ticks / os.sysconf("SC_CLK_TCK")
