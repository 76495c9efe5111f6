"""Errors the engine adapter raises; the service maps them to its own errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class EngineError(Exception):
    """Base of every error raised by the engine adapter."""


@dataclass(frozen=True)
class Problem:
    """One deployment problem: what is wrong, where, and how bad.

    `message` carries both languages ("English (中文)"), as API clients have always had it;
    `message_zh` and `message_en` say the same in one language, for a UI that shows one at a time.
    """

    message: str
    element_id: str | None = None
    line: int | None = None
    severity: str = "error"  # "error" | "warning"
    message_zh: str | None = None
    message_en: str | None = None

    @classmethod
    def of(cls, en: str, zh: str, element_id: str | None = None, line: int | None = None,
           severity: str = "error", *, detail: object = "", prefix: str = "", zh_text: str | None = None) -> Problem:
        """A problem told in both languages; `message` is "{prefix}{en} ({zh})[: {detail}]" as it always was."""
        tail = f": {detail}" if detail != "" else ""
        zh_tail = f"：{detail}" if detail != "" else ""
        return cls(f"{prefix}{en} ({zh}){tail}", element_id, line, severity,
                   message_zh=zh_text or f"{prefix}{zh}{zh_tail}", message_en=f"{prefix}{en}{tail}")

    def as_dict(self) -> dict[str, Any]:
        found = {"message": self.message, "message_zh": self.message_zh, "message_en": self.message_en,
                 "element_id": self.element_id, "line": self.line}
        return {k: v for k, v in found.items() if v is not None} | {"severity": self.severity}


class DeploymentError(EngineError):
    """The uploaded BPMN/DMN does not validate; `problems` lists every error at once."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class ScriptRefused(EngineError):
    """The sandbox refused a script or expression (does not compile, forbidden name, bad data)."""


class DataRefused(EngineError):
    """Submitted data cannot be stored in a case (e.g. it uses the serializer's reserved key)."""


class ScriptTimeout(EngineError):
    """A script or expression ran past its time limit."""


class FormCheckTimeout(EngineError):
    """Checking data against a designer's form ran past its time limit."""


class TaskNotReady(EngineError):
    """The task is unknown to the case or not waiting for a person."""


class NotWaiting(EngineError):
    """The case waits for no such message."""


class NotReturnable(EngineError):
    """The task may not be returned to an earlier step (not marked allowReturn, or nothing before it)."""


class MigrationRefused(EngineError):
    """Moving the case to that version would drop one of its open tasks."""


class LoopLimitExceeded(EngineError):
    """A step would take the case past the task-tree depth the engine handles safely."""


MAX_MESSAGE = 4000  # characters of an error's text kept: an incident is stored in the case row and its history


def shortened(text: str) -> str:
    """An error's text cut to MAX_MESSAGE characters: designer code chooses it (`raise ValueError(huge)`, or
    `int()` of a huge field, whose error repeats it)."""
    return text if len(text) <= MAX_MESSAGE else f"{text[:MAX_MESSAGE - 1]}…"


@dataclass
class Incident(EngineError):
    """An automatic step failed at run time; the step is not applied."""

    message: str
    element_id: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        return self.message
