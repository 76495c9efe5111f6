"""A designer turned attacker, against a real `cadreflow serve`: nothing escapes, stalls or exhausts it.

Each attack is deployed (and, when deploy accepts it, run) while a second client keeps asking the
server for something unrelated. Every attack must be refused at deploy or end as an incident with a
clear message; no marker file may appear; the unrelated request must be answered within a second
the whole time; the server's own peak memory must stay bounded; and afterwards an ordinary case
still runs. The server runs with a script time limit longer than its step time limit, so every
runaway here is stopped by the executor being killed, the limit designer code cannot catch.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import Http, running_server
from tests.engine.bpmn_builder import FORM, chain_process, document, form_schema, script_process

# Issue 9 asks that an unrelated request be answered within 1 s while an attack runs. A real stall
# repeats on every run; a noisy neighbour on the shared machine does not: so a miss is retried twice.
pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2)]
ROLES = ["designer", "org_dept", "admin"]
STEP_TIMEOUT = 1.5
MAX_LATENCY = 1.0  # seconds an unrelated request may take while an attack runs
MAX_RSS_GROWTH_KB = 150 * 1024


@pytest.fixture(scope="module")
def server(role_users_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    folder = tmp_path_factory.mktemp("hostile-e2e")
    with running_server(role_users_template, folder, SCRIPT_TIMEOUT_SECONDS=10, STEP_TIMEOUT_SECONDS=STEP_TIMEOUT,
                        EXECUTOR_MEMORY_MB=512, EXECUTOR_WORKERS=1, EXECUTOR_MAX_WORKERS=2) as http:
        for role in ROLES:
            http.login(role)
        status, body = http.request("POST", "/api/cadres", {"id": "c1", "name": "张三", "unit": "县发改局",
                                                            "post": "科长", "post_level": "middle",
                                                            "post_started_on": "2020-01-01"}, as_="org_dept")
        assert status == 201, body
        yield http


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that an escaped piece of designer code would create; it must never exist."""
    return tmp_path / f"pwned-{uuid.uuid4().hex}"


class Probe:
    """Asks the server for an unrelated read over and over, recording the slowest answer."""

    def __init__(self, http: Http) -> None:
        self.http = http
        self.slowest = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            status, _ = self.http.request("GET", "/api/processes", as_="designer", timeout=30)
            assert status == 200
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers += 1
            self._stop.wait(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)  # one more answer after the attack has ended
        self._stop.set()
        self._thread.join(timeout=40)


def peak_rss_kb(http: Http) -> int:
    assert http.process is not None
    status = Path(f"/proc/{http.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def under_attack(http: Http, attack: Callable[[], Any]) -> Any:
    """Run the attack while probing; assert the probe stayed fast and the server's memory bounded."""
    rss_before = peak_rss_kb(http)
    with Probe(http) as probe:
        result = attack()
    assert probe.answers >= 2, "the probe never got through"
    assert probe.slowest < MAX_LATENCY, f"an unrelated request took {probe.slowest:.2f} s"
    assert peak_rss_kb(http) - rss_before < MAX_RSS_GROWTH_KB
    return result


def key() -> str:
    return f"attack_{uuid.uuid4().hex[:10]}"


def deploy(http: Http, process_key: str, bpmn: bytes) -> tuple[int, Any]:
    return http.request("POST", f"/api/processes/{process_key}/versions", raw=bpmn, content_type="application/xml",
                        as_="designer")


def start(http: Http, process_key: str, **data: Any) -> tuple[int, Any]:
    return http.request("POST", "/api/cases", {"process": process_key, "cadre_id": "c1", "data": data}, as_="admin")


def assert_refused_at_deploy(http: Http, bpmn: bytes, *words: str) -> list[dict]:
    process_key = bpmn.decode().split('<bpmn:process id="', 1)[1].split('"', 1)[0]
    status, body = under_attack(http, lambda: deploy(http, process_key, bpmn))
    assert status == 422, body
    messages = " ".join(problem["message"] for problem in body["error"]["errors"])
    for word in words:
        assert word in messages, messages
    return body["error"]["errors"]


def assert_ends_as_incident(http: Http, bpmn: bytes, *words: str) -> None:
    """Deploy is accepted; starting a case fails as an incident (saved or refused), with a clear message."""
    process_key = bpmn.decode().split('<bpmn:process id="', 1)[1].split('"', 1)[0]
    status, body = deploy(http, process_key, bpmn)
    assert status == 201, body
    status, body = under_attack(http, lambda: start(http, process_key))
    if status == 201:
        assert body["status"] == "incident", body
        message = body["incident"]["message"]
    else:
        assert status == 409 and body["error"]["code"] == "incident", body
        message = body["error"]["message"]
    for word in words:
        assert word in message, message


def assert_still_working(http: Http) -> None:
    """After the attack an ordinary case starts and completes."""
    process_key = key()
    assert deploy(http, process_key, script_process("x = 1", key=process_key))[0] == 201
    status, case = start(http, process_key)
    assert status == 201 and case["status"] == "open", case
    task = case["open_tasks"][0]
    status, done = http.request("POST", f"/api/tasks/{task['id']}/complete", {"data": {"ok": True}}, as_="admin")
    assert (status, done["outcome"]) == (200, "done"), done


# Code that would outrun, out-compute or out-allocate its limits: stopped, the case an incident.

RUNAWAY_SCRIPTS = {
    "busy-loop": ("while True:\n    pass", "time limit"),
    "pow-builtin": ("x = pow(3, 25000000)", "bits"),
    "power-operator": ("x = 3 ** 25000000", "bits"),
    "squaring-loop": ("x = 2\nfor i in range(40):\n    x = x * x", "bits"),
    "percent-width": ("x = '%0*d' % (300000000, 1)", "width"),
    "replace-bomb": ("x = 'a' * 1000000\ny = x.replace('a', x)", ""),
    "join-bomb": ("x = 'a' * 1000000\ny = '-'.join([x] * 1000)", ""),
    "list-bomb": ("x = list(range(100000))\ny = [list(x) for i in range(100000)]", ""),
    "deep-recursion": ("def f(n):\n    return f(n + 1)\nx = f(0)", "recursion"),
    "generator-chain": ("g = (i for i in range(100000))\nfor n in range(1000):\n    g = (i for i in g)\nx = sum(g)",
                        ""),
    "format-walk": ("x = '{0.__class__.__mro__}'.format(1)", "format"),
    "nested-comprehension": ("x = [i * j for i in range(100000) for j in range(100000)]", "time limit"),
}


@pytest.mark.parametrize("name", list(RUNAWAY_SCRIPTS))
def test_runaway_code_ends_as_an_incident(server: Http, marker: Path, name: str) -> None:
    """Loops, huge numbers, memory bombs, recursion: an incident with a clear message, the server unharmed."""
    script, word = RUNAWAY_SCRIPTS[name]
    assert_ends_as_incident(server, script_process(script, key=key()), word)
    assert_still_working(server)


# Code that would catch its limit, escape the sandbox or reach the network: refused at deploy.

REFUSED_SCRIPTS = {
    "catch-the-limit": ("try:\n    while True:\n        pass\nexcept BaseException:\n    pass\nwhile True:\n    pass",
                        "try/except"),
    "catch-in-generator": ("def g():\n    while True:\n        try:\n            yield 1\n"
                           "        except BaseException:\n            pass\nx = sum(g())", "try/except"),
    "import-os": ("import os\nos.system('id')", "import"),
    "dunder-walk": ("x = ().__class__.__base__.__subclasses__()", "__class__"),
    "fstring-walk": ("x = f'{(1).__class__}'", "__class__"),
    "open-file": ("x = open('/etc/passwd').read()", "open"),
    "exec": ("exec('import os')", "exec"),
}


@pytest.mark.parametrize("name", list(REFUSED_SCRIPTS))
def test_escaping_code_is_refused_at_deploy(server: Http, name: str) -> None:
    """try/except around the limit, imports, dunder walks, open/exec: 422 at deploy, naming the script task."""
    script, word = REFUSED_SCRIPTS[name]
    problems = assert_refused_at_deploy(server, script_process(script, key=key()), word)
    assert any(problem.get("element_id") == "run_script" for problem in problems), problems


def test_a_hostile_assignee_runs_only_in_the_sandbox_even_in_check(server: Http, marker: Path) -> None:
    """The assignee that once ran os.system during `cadreflow check`: a start field named `deadline` steered
    plain eval into the attack; in the sandbox `deadline` is the function, so the case starts harmlessly, and
    check evaluates it in an executor too: no file is written, no fault reported."""
    # 'org_dept' names an active user of the task's lane: a name nobody holds would open the task in the pool.
    attack = ("'org_dept' if callable(deadline) else getattr(getattr(getattr, '__self__'), '__import__')('os')"
              f".system('id > {marker}')")
    process_key = key()
    assert deploy(server, process_key, script_process("y = 1", key=process_key, assignee=attack))[0] == 201
    status, case = under_attack(server, lambda: start(server, process_key, deadline="x"))
    assert status == 201 and case["open_tasks"][0]["assignee"] == "org_dept", case
    check = server.cli("check")
    assert not marker.exists(), "designer code ran outside the sandbox during check"
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_assignee_that_fails_in_the_sandbox_is_an_incident(server: Http, marker: Path) -> None:
    """Without the steering, the escape fails inside the sandbox (no getattr there): 409 incident, no file."""
    attack = f"getattr(getattr(getattr, '__self__'), '__import__')('os').system('id > {marker}')"
    process_key = key()
    assert deploy(server, process_key, script_process("y = 1", key=process_key, assignee=attack))[0] == 201
    status, body = under_attack(server, lambda: start(server, process_key))
    assert status == 409 and "assignee" in body["error"]["message"], body
    assert not marker.exists()


# Form schemas: nothing fetched, patterns in linear time.

def test_form_refs_to_files_and_the_network_are_refused_and_nothing_is_fetched(server: Http) -> None:
    """$ref to file:// and to a listening http://127.0.0.1 port: 422 at deploy, and the listener hears nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        for target in ("file:///etc/passwd", f"http://127.0.0.1:{port}/schema.json"):
            form = {**FORM, "properties": {"ok": {"$ref": target}}}
            bpmn = script_process("x = 1", key=key()).replace(form_schema().encode(), form_schema(form).encode())
            errors = assert_refused_at_deploy(server, bpmn, "not local")
            assert all("root:" not in problem["message"] for problem in errors)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()


def test_a_catastrophic_pattern_runs_in_linear_time(server: Http) -> None:
    """`^(a+)+$` against 30 a's and a '!': refused as a value (422) at once, the server never stalls."""
    process_key = key()
    form = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
            "required": ["code"]}
    bpmn = chain_process([("review", form_schema(form))], {"org_dept": ["review"]}, process_key)
    assert deploy(server, process_key, bpmn)[0] == 201
    status, case = start(server, process_key)
    task = case["open_tasks"][0]
    status, body = under_attack(server, lambda: server.request(
        "POST", f"/api/tasks/{task['id']}/complete", {"data": {"code": "a" * 30 + "!"}}, as_="admin"))
    assert status == 422 and "code" in body["error"]["fields"], body


def test_a_pattern_re2_cannot_run_is_refused_at_deploy(server: Http) -> None:
    """Backreferences and lookaround need backtracking: 422 at deploy, naming the pattern."""
    form = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)\\1$"}}}
    bpmn = chain_process([("review", form_schema(form))], {"org_dept": ["review"]}, key())
    assert_refused_at_deploy(server, bpmn, "pattern")


# Size: a process too wide or too large for one step.

def wide_process(process_key: str, width: int) -> bytes:
    """start → parallel split into `width` script tasks → parallel join → terminate end."""
    body = ['    <bpmn:startEvent id="start"/>\n', '    <bpmn:parallelGateway id="split"/>\n',
            '    <bpmn:parallelGateway id="join"/>\n',
            '    <bpmn:endEvent id="end_done"><bpmn:terminateEventDefinition id="t"/></bpmn:endEvent>\n',
            '    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="split"/>\n',
            '    <bpmn:sequenceFlow id="f_end" sourceRef="join" targetRef="end_done"/>\n']
    for i in range(width):
        body.append(f'    <bpmn:scriptTask id="s{i}"><bpmn:script>x{i} = {i}</bpmn:script></bpmn:scriptTask>\n'
                    f'    <bpmn:sequenceFlow id="a{i}" sourceRef="split" targetRef="s{i}"/>\n'
                    f'    <bpmn:sequenceFlow id="b{i}" sourceRef="s{i}" targetRef="join"/>\n')
    return document("".join(body), {}, process_key)


def test_a_5000_wide_process_is_refused_at_deploy_naming_the_limits(server: Http) -> None:
    """5,000 parallel script tasks: 422 naming the element count and the fan-out limits."""
    bpmn = wide_process(key(), 5000)
    problems = assert_refused_at_deploy(server, bpmn, "max_flow_nodes", "max_fan_out")
    assert any(problem.get("element_id") == "split" for problem in problems)


def test_a_service_task_calling_an_unknown_operation_is_refused_at_deploy(server: Http) -> None:
    """No case is ever started on a process whose service task has nothing to call."""
    bpmn = script_process("x = 1", key=key(), service_param='"p"').replace(b'id="cadre_facts"', b'id="rm_rf"')
    problems = assert_refused_at_deploy(server, bpmn, "rm_rf")
    assert problems[0]["element_id"] == "call_service"


def test_the_server_is_still_whole_after_every_attack(server: Http) -> None:
    """The service runs a case, and `cadreflow check` finds every case the attacks left consistent."""
    assert_still_working(server)
    check = server.cli("check")
    assert check.returncode == 0, check.stdout + check.stderr
