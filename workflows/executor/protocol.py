"""The narrow protocol between the service and its step executors: framed JSON over pipes.

A frame is two big-endian lengths, a JSON header and an optional raw payload (a case's saved
state travels as the payload, so it is not escaped into the header). Only JSON crosses: a worker
that designer code had taken over could still send nothing but data, which the parent checks.
Values of the engine (`Step`, `Migration`, `Diagram`, errors) are encoded here, both ways.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any

from workflows.engine.bounds import (
    MAX_ASSIGNEE,
    MAX_ELEMENT_ID,
    MAX_ELEMENT_NAME,
    MAX_EVENT_NAME,
    MAX_OUTCOME,
    MAX_ROLE,
)
from workflows.engine.errors import (
    DataRefused,
    EngineError,
    Incident,
    LoopLimitExceeded,
    MigrationRefused,
    NotReturnable,
    NotWaiting,
    ScriptRefused,
    ScriptTimeout,
    TaskNotReady,
    shortened,
)
from workflows.engine.types import (
    EVENT_ACTIONS,
    Diagram,
    EngineEvent,
    IncidentInfo,
    Migration,
    OpenTask,
    Step,
    Thrown,
    Wait,
)

_LENGTHS = struct.Struct(">II")
MAX_HEADER_BYTES = 32 * 1024 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
MAX_TASK_ID = 36  # a task's id: a UUID, as the tasks table keys it


class ChannelClosed(Exception):
    """The other end closed its pipe (a worker exited or was killed)."""


class ChannelTimeout(Exception):
    """No complete frame arrived before the deadline."""


class ProtocolViolation(Exception):
    """The other end sent something that is not a well-formed frame."""


class Channel:
    """One direction pair of pipe descriptors carrying frames."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, header: dict[str, Any], payload: bytes = b"", deadline: float | None = None) -> None:
        """Write one frame; `deadline` as for `receive`. On a non-blocking descriptor (the parent's) a reader that
        stops reading is a ChannelTimeout at the deadline: a blocking write would wait for it for ever."""
        encoded = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
        view = memoryview(_LENGTHS.pack(len(encoded), len(payload)) + encoded + payload)
        while view:
            try:
                written = os.write(self.write_fd, view)
            except BlockingIOError:
                self._wait_writable(deadline)
                continue
            view = view[written:]

    def _wait_writable(self, deadline: float | None) -> None:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise ChannelTimeout()
        if not select.select([], [self.write_fd], [], remaining)[1]:
            raise ChannelTimeout()

    def receive(self, deadline: float | None = None) -> tuple[dict[str, Any], bytes]:
        """Read one frame; `deadline` is a time.monotonic() value, None waits for ever."""
        header_len, payload_len = _LENGTHS.unpack(self._read_exactly(_LENGTHS.size, deadline))
        if header_len > MAX_HEADER_BYTES or payload_len > MAX_PAYLOAD_BYTES:
            raise ProtocolViolation(f"frame too large ({header_len} + {payload_len} bytes)")
        try:
            header = json.loads(self._read_exactly(header_len, deadline))
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser's depth
            raise ProtocolViolation(f"header is not JSON: {type(exc).__name__}") from None
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise ProtocolViolation("header is not an object with a type")
        return header, self._read_exactly(payload_len, deadline)

    def _read_exactly(self, size: int, deadline: float | None) -> bytes:
        chunks, missing = [], size
        while missing:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.read_fd], [], [], remaining)[0]:
                    raise ChannelTimeout()
            chunk = os.read(self.read_fd, min(missing, 1 << 20))
            if not chunk:
                raise ChannelClosed()
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)


# Engine values <-> JSON ----------------------------------------------------------------------

def encode_step(step: Step) -> tuple[dict[str, Any], bytes]:
    """A step as a header (everything but the state) and the state as payload."""
    fields = {name: getattr(step, name) for name in _STEP_VALUES}  # plain values: no deep copy (asdict)
    fields.update(open_tasks=[asdict(task) for task in step.open_tasks], events=[asdict(e) for e in step.events],
                  incident=asdict(step.incident) if step.incident is not None else None,
                  diagram=asdict(step.diagram), waits=[asdict(wait) for wait in step.waits],
                  thrown=[asdict(event) for event in step.thrown], raised=[asdict(event) for event in step.raised])
    return fields, step.state.encode()


_STEP_VALUES = ("completed", "outcome", "data", "next_timer_due", "overdue_elements", "failed_elements", "calls",
                "left_calls")


def decode_step(fields: dict[str, Any], state: bytes) -> Step:
    """Rebuild a step from what `encode_step` produced, checking the type of every value: a worker that designer
    code had taken over could send anything, and what passes here is stored and shown as it is."""
    try:
        incident, diagram = fields["incident"], _object(fields["diagram"])
        return Step(
            state=state.decode(), completed=_bool(fields["completed"]),
            outcome=_text_or_none(fields["outcome"], MAX_OUTCOME),
            data=_object(fields["data"]), open_tasks=tuple(map(_open_task, _list(fields["open_tasks"]))),
            next_timer_due=_time_or_none(fields["next_timer_due"]),
            events=tuple(map(_event, _list(fields["events"]))), overdue_elements=_texts(fields["overdue_elements"]),
            incident=_incident(incident) if incident is not None else None,
            failed_elements=_texts(fields["failed_elements"]),
            diagram=Diagram(_texts(diagram["completed"]), _texts(diagram["active"])),
            waits=tuple(Wait(_kind(w["kind"]), _text(w["name"], MAX_EVENT_NAME), _texts(w["correlations"]))
                        for w in map(_object, _list(fields["waits"]))),
            thrown=tuple(Thrown(_kind(t["kind"]), _text(t["name"], MAX_EVENT_NAME), t["payload"],
                                _texts(t["correlations"])) for t in map(_object, _list(fields["thrown"]))),
            calls=_texts(fields["calls"]), left_calls=_texts(fields["left_calls"]),
            raised=raised_of(fields.get("raised", [])),
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(f"malformed step: {exc!r}") from None


def raised_of(value: Any) -> tuple[Thrown, ...]:
    """Errors and escalations (kind, code) as a step or an outbox item carries them, each checked."""
    return tuple(Thrown(_raised_kind(t["kind"]), _text(t["name"], MAX_EVENT_NAME)) for t in map(_object, _list(value)))


def _raised_kind(value: Any) -> str:
    if value not in ("error", "escalation"):
        raise ValueError("a raised event of another kind than error or escalation")
    return str(value)


def _open_task(value: Any) -> OpenTask:
    task = _object(value)
    return OpenTask(id=_text(task["id"], MAX_TASK_ID), element_id=_text(task["element_id"], MAX_ELEMENT_ID),
                    name=_text(task["name"], MAX_ELEMENT_NAME), role=_text_or_none(task["role"], MAX_ROLE),
                    assignee=_text_or_none(task["assignee"], MAX_ASSIGNEE), due_at=_time_or_none(task["due_at"]),
                    supervises=_text_or_none(task.get("supervises"), MAX_ELEMENT_ID))


def _event(value: Any) -> EngineEvent:
    event = _object(value)
    if event["action"] not in EVENT_ACTIONS:
        raise ValueError("an unknown kind of engine event")
    return EngineEvent(event["action"], _text(event["element_id"], MAX_ELEMENT_ID), _text(event["name"]),
                       _object(event["detail"]))


def _incident(value: Any) -> IncidentInfo:
    incident = _object(value)
    line = incident["line"]
    if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
        raise TypeError("expected a line number")
    return IncidentInfo(shortened(_text(incident["message"])), _text_or_none(incident["element_id"], MAX_ELEMENT_ID),
                        line,
                        _bool(incident.get("retryable", False)))


def encode_steps(results: list[Any]) -> tuple[dict[str, Any], bytes]:
    """Several steps (or errors) in one frame: headers in a list, the states concatenated as payload."""
    items, states = [], []
    for result in results:
        if isinstance(result, EngineError):
            items.append(encode_error(result))
            continue
        fields, state = encode_step(result)
        items.append({"type": "step", "length": len(state), **fields})
        states.append(state)
    return {"items": items}, b"".join(states)


def decode_steps(header: dict[str, Any], payload: bytes) -> list[Step | EngineError]:
    results: list[Step | EngineError] = []
    offset = 0
    try:
        for item in map(_object, _list(header["items"])):
            if item.get("type") == "error":
                results.append(decode_error(item))
                continue
            length = item.pop("length")
            if not isinstance(length, int) or not 0 <= length <= len(payload) - offset:
                raise ValueError("a state's length outside the payload")
            item.pop("type")
            results.append(decode_step(item, payload[offset:offset + length]))
            offset += length
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolViolation(f"malformed steps: {exc!r}") from None
    return results


def encode_migration(migration: Migration) -> tuple[dict[str, Any], bytes]:
    step_fields, state = encode_step(migration.step) if migration.step is not None else (None, b"")
    return {"removed": list(migration.removed), "changed": list(migration.changed), "step": step_fields}, state


def decode_migration(fields: dict[str, Any], state: bytes) -> Migration:
    try:
        step = decode_step(fields["step"], state) if fields["step"] is not None else None
        return Migration(removed=_texts(fields["removed"]), changed=_texts(fields["changed"]), step=step)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolViolation(f"malformed migration: {exc!r}") from None


def _text(value: Any, limit: int | None = None) -> str:
    """A text, of at most `limit` characters (what the column storing it holds)."""
    if not isinstance(value, str):
        raise TypeError("expected text")
    if limit is not None and len(value) > limit:
        raise ValueError(f"a text longer than {limit} characters")
    return value


def _kind(value: Any) -> str:
    """What a case waits for or sends: a message or a signal (the outbox's other kinds are the service's own)."""
    if value not in ("message", "signal"):
        raise ValueError("a wait or a thrown event of another kind than message or signal")
    return str(value)


def _text_or_none(value: Any, limit: int | None = None) -> str | None:
    return None if value is None else _text(value, limit)


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(map(_text, _list(value)))


def _time_or_none(value: Any) -> str | None:
    """An ISO 8601 time with its zone (what the database stores), or None."""
    text = _text_or_none(value)
    if text is not None and datetime.fromisoformat(text).tzinfo is None:
        raise ValueError("expected a time with its zone")
    return text


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


# Errors ---------------------------------------------------------------------------------------

_ERRORS: dict[str, type[EngineError]] = {cls.__name__: cls for cls in (
    EngineError, ScriptRefused, ScriptTimeout, TaskNotReady, NotWaiting, MigrationRefused, LoopLimitExceeded,
    DataRefused, NotReturnable)}


def encode_error(exc: EngineError) -> dict[str, Any]:
    """An engine error as a header the parent turns back into the same class."""
    if isinstance(exc, Incident):
        return {"type": "error", "kind": "Incident", "message": exc.message, "element_id": exc.element_id,
                "line": exc.line}
    kind = type(exc).__name__ if type(exc).__name__ in _ERRORS else "EngineError"
    return {"type": "error", "kind": kind, "message": str(exc)}


def decode_error(header: dict[str, Any]) -> EngineError:
    message = shortened(str(header.get("message", "")))
    if header.get("kind") == "Incident":
        line = header.get("line")
        element_id = header.get("element_id")
        return Incident(message, element_id if isinstance(element_id, str) else None,
                        line if isinstance(line, int) else None)
    return _ERRORS.get(str(header.get("kind")), EngineError)(message)
