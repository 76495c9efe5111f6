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
from typing import Any

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
)
from workflows.engine.types import Diagram, EngineEvent, IncidentInfo, Migration, OpenTask, Step, Thrown, Wait

_LENGTHS = struct.Struct(">II")
MAX_HEADER_BYTES = 32 * 1024 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


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

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        """Write one frame (blocks until the pipe takes it)."""
        encoded = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
        view = memoryview(_LENGTHS.pack(len(encoded), len(payload)) + encoded + payload)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def receive(self, deadline: float | None = None) -> tuple[dict[str, Any], bytes]:
        """Read one frame; `deadline` is a time.monotonic() value, None waits for ever."""
        header_len, payload_len = _LENGTHS.unpack(self._read_exactly(_LENGTHS.size, deadline))
        if header_len > MAX_HEADER_BYTES or payload_len > MAX_PAYLOAD_BYTES:
            raise ProtocolViolation(f"frame too large ({header_len} + {payload_len} bytes)")
        try:
            header = json.loads(self._read_exactly(header_len, deadline))
        except ValueError as exc:
            raise ProtocolViolation(f"header is not JSON: {exc}") from None
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
                  thrown=[asdict(event) for event in step.thrown])
    return fields, step.state.encode()


_STEP_VALUES = ("completed", "outcome", "data", "next_timer_due", "overdue_elements", "failed_elements", "calls",
                "left_calls")


def decode_step(fields: dict[str, Any], state: bytes) -> Step:
    """Rebuild a step from what `encode_step` produced, checking its shape."""
    try:
        incident = fields["incident"]
        return Step(
            state=state.decode(), completed=bool(fields["completed"]), outcome=_text_or_none(fields["outcome"]),
            data=_object(fields["data"]),
            open_tasks=tuple(OpenTask(**task) for task in fields["open_tasks"]),
            next_timer_due=_text_or_none(fields["next_timer_due"]),
            events=tuple(EngineEvent(**event) for event in fields["events"]),
            overdue_elements=tuple(map(str, fields["overdue_elements"])),
            incident=IncidentInfo(**incident) if incident is not None else None,
            failed_elements=tuple(map(str, fields["failed_elements"])),
            diagram=Diagram(**{k: tuple(v) for k, v in fields["diagram"].items()}),
            waits=tuple(Wait(str(w["kind"]), str(w["name"]), tuple(map(str, w["correlations"])))
                        for w in fields["waits"]),
            thrown=tuple(Thrown(str(t["kind"]), str(t["name"]), t["payload"], tuple(map(str, t["correlations"])))
                         for t in fields["thrown"]),
            calls=tuple(map(str, fields["calls"])), left_calls=tuple(map(str, fields["left_calls"])),
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(f"malformed step: {exc!r}") from None


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
        for item in header["items"]:
            if item.get("type") == "error":
                results.append(decode_error(item))
                continue
            length = int(item.pop("length"))
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
        return Migration(removed=tuple(map(str, fields["removed"])), changed=tuple(map(str, fields["changed"])),
                         step=step)
    except (KeyError, TypeError) as exc:
        raise ProtocolViolation(f"malformed migration: {exc!r}") from None


def _text_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("expected text")
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
    message = str(header.get("message", ""))[:4000]
    if header.get("kind") == "Incident":
        line = header.get("line")
        element_id = header.get("element_id")
        return Incident(message, element_id if isinstance(element_id, str) else None,
                        line if isinstance(line, int) else None)
    return _ERRORS.get(str(header.get("kind")), EngineError)(message)
