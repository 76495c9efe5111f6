"""Fixtures for the engine tests: the four processes compiled once per module, a Driver factory."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.helpers import BPMN_DIR, FIXTURES, PROCESS_KEYS, Driver, compile_file
from workflows.engine import ProcessDefinition


@pytest.fixture(scope="module")
def definitions() -> dict[str, ProcessDefinition]:
    """The four core processes, compiled once per test module."""
    return {key: compile_file(BPMN_DIR / f"{key}.bpmn") for key in PROCESS_KEYS}


@pytest.fixture(scope="module")
def review_loop() -> ProcessDefinition:
    """The fixture process: a user-task loop with a boundary escalation timer (deadline `review`)."""
    return compile_file(FIXTURES / "review_loop.bpmn")


@pytest.fixture
def drive(definitions):
    """A factory of Drivers for the four processes: drive("admonishment", fast=("inquiry_reply",))."""

    def make(key: str, **options: Any) -> Driver:
        return Driver(definitions[key], **options)
    return make
