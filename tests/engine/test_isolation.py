"""The executors' second wall: once confined, even plain Python (as if RestrictedPython had been
escaped) cannot open a file, write one, reach the network, start a process, reach into another
process, or grow without bound."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workflows.executor.pool import PROJECT_ROOT

ATTEMPTS = textwrap.dedent("""
    import json, os, socket, sys
    from workflows.executor import isolation
    held = isolation.apply(isolation.Limits(memory_mb=256))
    results = {"held": held}

    def attempt(name, action):
        try:
            action()
            results[name] = "succeeded"
        except BaseException as exc:
            results[name] = type(exc).__name__

    attempt("read_file", lambda: open(sys.argv[1]).read())
    attempt("write_file", lambda: open(sys.argv[2], "w").write("pwned"))
    attempt("connect", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=1))
    attempt("fork", os.fork)
    attempt("exec", lambda: os.execv("/bin/true", ["/bin/true"]))
    attempt("allocate_1gb", lambda: bytearray(1024 ** 3))
    # The parent's descriptors (its database connection among them) through a pidfd.
    attempt("pidfd_of_parent", lambda: os.pidfd_open(os.getppid()))

    def shared_memory():
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.shmget(0, 4096, 0o1600) == -1:  # IPC_PRIVATE, IPC_CREAT | 0600
            raise OSError(ctypes.get_errno(), "shmget")
    attempt("system_v_shared_memory", shared_memory)
    os.write(1, json.dumps(results).encode())
""")


@pytest.fixture
def listener():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def test_a_confined_process_can_do_none_of_it(tmp_path: Path, listener) -> None:
    """Each attempt raises inside the confined process; the file is not written, the listener hears nothing."""
    readable = tmp_path / "readable.txt"
    readable.write_text("secret")
    readable.chmod(0o644)
    target = tmp_path / "written.txt"
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
                          + ATTEMPTS, str(readable), str(target), str(listener.getsockname()[1])],
                         capture_output=True, text=True, timeout=60, env={})
    results = json.loads(run.stdout)
    assert {"rlimits", "seccomp"} <= set(results.pop("held")), run.stderr
    assert set(results) == {"read_file", "write_file", "connect", "fork", "exec", "allocate_1gb", "pidfd_of_parent",
                            "system_v_shared_memory"}
    assert "succeeded" not in results.values(), results
    assert results["allocate_1gb"] == "MemoryError"
    assert not target.exists()
    with pytest.raises(TimeoutError):
        listener.accept()
