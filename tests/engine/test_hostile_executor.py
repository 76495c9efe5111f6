"""The parent against a compromised step executor: a worker taken over by designer code can send the parent any
bytes, or stop reading. Whatever it sends, the step fails as an incident (never an exception the service does not
expect, never values the database or the pages would choke on), the worker is killed, and the parent is never held
past the step's time budget."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflows.engine import Incident, OpenTask, ProcessDefinition, Step, compile_process
from workflows.executor import pool as pool_module
from workflows.executor.client import StepExecutor
from workflows.executor.pool import ExecutorPool, PoolSettings
from workflows.executor.protocol import Channel, encode_step

WARMUP = Path(pool_module.__file__).with_name("warmup.bpmn")
# A stand-in for a worker designer code has taken over: it says it is ready, then does `BEHAVIOUR`.
FAKE_WORKER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from workflows.executor.protocol import Channel
    channel = Channel(0, 1)
    channel.send({"type": "ready"})
""")
ANSWER = "channel.receive()\nchannel.send(json.loads({header!r}), {payload!r})\ntime.sleep(30)\n"
# A header of 400 KB nested 200,000 deep: within the size bound, past the JSON parser's recursion limit.
DEEP_HEADER = textwrap.dedent("""
    import os
    channel.receive()
    header = b"[" * 200_000 + b"]" * 200_000
    os.write(1, len(header).to_bytes(4, "big") + bytes(4) + header)
    time.sleep(30)
""")


@pytest.fixture(scope="module")
def process() -> ProcessDefinition:
    dmn = WARMUP.with_suffix(".dmn")
    return compile_process("warmup", WARMUP.read_bytes(), {dmn.name: dmn.read_bytes()}, None)


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory of executors whose one worker runs `behaviour` (Python, after it said it is ready)."""
    pools: list[ExecutorPool] = []

    def make(behaviour: str, step_timeout: float = 1.0) -> tuple[StepExecutor, ExecutorPool]:
        monkeypatch.setattr(pool_module, "BOOT", FAKE_WORKER + behaviour)
        pools.append(ExecutorPool(PoolSettings(workers=0, max_workers=1, startup_timeout=20)))
        return StepExecutor(pools[-1], {}, step_timeout=step_timeout), pools[-1]
    yield make
    for each in pools:
        each.close()


def _valid_step() -> tuple[dict[str, Any], bytes]:
    task = OpenTask(id="t1", element_id="review", name="审核", role="org_dept", assignee=None, due_at=None)
    return encode_step(Step(state="{}", completed=False, outcome=None, data={}, open_tasks=(task,),
                            next_timer_due=None, events=()))


def _answer(header: dict[str, Any], payload: bytes = b"{}") -> str:
    return ANSWER.format(header=json.dumps({"type": "result", **header}), payload=payload)


def _within(seconds: float, action: Any) -> BaseException | None:
    """Run `action`; the exception it raised, failing the test if it has not returned within `seconds`."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"the parent was still held after {seconds} s"
    return outcome[0]


def test_the_answer_used_below_is_accepted_as_it_is(hostile, process) -> None:
    runner, _ = hostile(_answer(_valid_step()[0]))
    assert runner.inspect(process, "{}").open_tasks[0].name == "审核"


def _malformed() -> list[tuple[str, dict[str, Any]]]:
    step, _ = _valid_step()
    task = step["open_tasks"][0]
    return [
        ("task id an object", {**step, "open_tasks": [{**task, "id": {"x": 1}}]}),
        ("task role a number", {**step, "open_tasks": [{**task, "role": 7}]}),
        ("task due not a time", {**step, "open_tasks": [{**task, "due_at": "soon"}]}),
        ("next timer not a time", {**step, "next_timer_due": "tomorrow-ish"}),
        ("event detail a list", {**step, "events": [{"action": "end", "element_id": "e", "name": "n",
                                                     "detail": [1]}]}),
        ("event name an object", {**step, "events": [{"action": "end", "element_id": "e", "name": {}, "detail": {}}]}),
        ("diagram of numbers", {**step, "diagram": {"completed": [1, 2], "active": []}}),
        ("diagram as text", {**step, "diagram": {"completed": "abc", "active": []}}),
        ("open tasks as text", {**step, "open_tasks": "t1"}),
        ("incident line as text", {**step, "incident": {"message": "m", "element_id": None, "line": "3",
                                                        "retryable": False}}),
        ("completed as text", {**step, "completed": "no"}),
        ("wait kind missing", {**step, "waits": [{"name": "m", "correlations": []}]}),
        # Past what the column storing it holds (PostgreSQL refuses it when the step is stored).
        ("task name too long", {**step, "open_tasks": [{**task, "name": "名" * 201}]}),
        ("task role too long", {**step, "open_tasks": [{**task, "role": "r" * 41}]}),
        ("outcome too long", {**step, "outcome": "o" * 41}),
        # A call's end is the service's own kind of outbox item, never a case's.
        ("thrown call end", {**step, "thrown": [{"kind": "call_done", "name": "n", "payload": {},
                                                 "correlations": []}]}),
        ("wait of another kind", {**step, "waits": [{"kind": "call_done", "name": "n", "correlations": []}]}),
        # What a called case raised for its caller's boundary events: an error or an escalation, with a code.
        ("raised message", {**step, "raised": [{"kind": "message", "name": "n"}]}),
        ("raised code an object", {**step, "raised": [{"kind": "error", "name": {"x": 1}}]}),
        ("raised code too long", {**step, "raised": [{"kind": "error", "name": "e" * 201}]}),
        # History entries the engine never writes, in the case's chained history as the system's.
        ("event of another action", {**step, "events": [{"action": "complete", "element_id": "e", "name": "n",
                                                         "detail": {}}]}),
    ]


@pytest.mark.parametrize(("header",), [(header,) for _, header in _malformed()], ids=[n for n, _ in _malformed()])
def test_a_malformed_step_is_an_incident_and_the_worker_is_killed(hostile, process, header) -> None:
    runner, pool = hostile(_answer(header))
    with pytest.raises(Incident, match="executor"):
        runner.inspect(process, "{}")
    assert not pool._idle, "the worker that broke the protocol went back to the pool"


@pytest.mark.parametrize("items", [["x"], [1], "ab", [{"type": "step", "length": -5}]])
def test_a_malformed_batch_of_starts_is_an_incident(hostile, process, items) -> None:
    runner, pool = hostile(_answer({"items": items}))
    with pytest.raises(Incident, match="executor"):
        runner.start_many(process, [{}], [lambda *_: {}])
    assert not pool._idle


def test_a_header_nested_past_the_parsers_depth_is_an_incident(hostile, process) -> None:
    runner, pool = hostile(DEEP_HEADER)
    with pytest.raises(Incident, match="executor"):
        runner.inspect(process, "{}")
    assert not pool._idle


def test_a_worker_that_stops_reading_cannot_hold_the_parent_past_the_budget(hostile, process) -> None:
    runner, pool = hostile("time.sleep(60)\n", step_timeout=0.5)
    failure = _within(15, lambda: runner.inspect(process, "x" * (4 << 20)))  # far more than a pipe holds
    assert isinstance(failure, Incident) and "time limit" in failure.message
    assert not pool._idle


def test_a_worker_asking_for_its_process_without_reading_the_answers_is_stopped_at_the_budget(hostile, process) \
        -> None:
    flood = f"while True:\n    channel.send({{'type': 'need_spec', 'hash': {process.content_hash!r}}})\n"
    runner, _ = hostile("channel.receive()\n" + flood, step_timeout=0.5)
    failure = _within(15, lambda: runner.inspect(process, "{}"))
    assert isinstance(failure, Incident)


def test_a_worker_beginning_more_cases_than_its_batch_has_is_stopped(hostile, process) -> None:
    """Each case of a batch of starts gets its budget from its `next_case` frame: a worker announcing more
    cases than the batch has, to be given their budgets, breaks the protocol."""
    forever = ("channel.receive()\nwhile True:\n"
               "    channel.send({'type': 'next_case', 'item': 0})\n    time.sleep(0.1)\n")
    runner, pool = hostile(forever, step_timeout=0.5)
    failure = _within(15, lambda: runner.start_many(process, [{}, {}], [lambda *_: {}] * 2))
    assert isinstance(failure, Incident) and "executor" in failure.message, failure
    assert not pool._idle


def test_a_malformed_rule_answer_is_an_incident(hostile) -> None:
    runner, pool = hostile(_answer({"value": "yes"}))
    with pytest.raises(Incident, match="executor"):
        runner.check_rules(["True"], {})
    assert not pool._idle



def test_an_incident_message_of_any_length_reaches_the_case_shortened(hostile, process) -> None:
    step, _ = _valid_step()
    header = {**step, "incident": {"message": "x" * 100_000, "element_id": None, "line": None, "retryable": False}}
    runner, _ = hostile(_answer(header))
    incident = runner.inspect(process, "{}").incident
    assert incident is not None and len(incident.message) <= 4000


def test_a_failure_in_the_parent_mid_step_never_hands_one_case_the_step_of_another(monkeypatch, process) -> None:
    """Any failure between the request and its answer (here memory, while reading; an unexpected one anywhere) kills
    the worker: returned to the pool, its pending answer would be read as the next step's, another case's."""
    pool = ExecutorPool(PoolSettings(workers=0, max_workers=1, startup_timeout=60))
    try:
        runner = StepExecutor(pool, {"warmup": "PT1H"}, step_timeout=10)
        first, second = (runner.start(process, {"amount": amount}, lambda *_: {"ok": True}) for amount in (3, 5))
        receive, failures = Channel.receive, [MemoryError("short of memory while reading")]

        def failing_once(channel: Channel, deadline: float | None = None) -> tuple[dict[str, Any], bytes]:
            if failures:
                raise failures.pop()
            return receive(channel, deadline)
        monkeypatch.setattr(Channel, "receive", failing_once)
        with pytest.raises(MemoryError):
            runner.inspect(process, first.state)
        assert runner.inspect(process, second.state).data["x"] == 10  # the second case's, not the first's 6
    finally:
        pool.close()
