"""The service's own process never runs designer code, nor builds or loads a workflow: only executors do.

SpiffWorkflow's script engine and workflow class are booby-trapped in this (the service's) process;
then every path that touches a case runs: starts, completions, form rules, timers, messages, the
diagram, cancel, migrate, retry, `cadreflow check`. Any of them evaluating code or building a
workflow here instead of in an executor fails the test.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: TID251 - the test traps SpiffWorkflow itself
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: TID251

from service.usecases import check
from tests.api.support import CaseApi, fire_after_deadline, start_vetting, vetting_to_notice
from workflows.engine.sandbox import SandboxEnvironment

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"


@pytest.fixture
def booby_trapped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make evaluating, executing or building a workflow in this process fail loudly (and be recorded)."""
    calls: list[str] = []

    def trap(name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} ran in the service's own process")
        return refuse
    for cls, method in ((PythonScriptEngine, "evaluate"), (PythonScriptEngine, "execute"),
                        (SandboxEnvironment, "evaluate"), (SandboxEnvironment, "execute"), (BpmnWorkflow, "__init__")):
        monkeypatch.setattr(cls, method, trap(f"{cls.__name__}.{method}"))
    return calls


def test_every_case_path_runs_its_code_in_an_executor(api: CaseApi, booby_trapped: list[str]) -> None:
    """Start, complete (with form rules), objection message, migrate, cancel, diagram, check: nothing runs here."""
    api.create_cadre("c1")
    case_id = vetting_to_notice(api)
    assert api.get(f"/api/cases/{case_id}/diagram").status_code == 200
    assert api.post("/api/messages", as_="discipline",
                    json={"name": "vetting_objection", "case_id": case_id, "data": {}}).status_code == 202
    api.complete(case_id, "verify_objection", substantiated=False)
    rotation = api.start("rotation_review", "c1", as_="org_dept", rule="mandatory", years_in_post=12,
                         post_level="middle")
    refused = api.post(f"/api/tasks/{rotation['open_tasks'][0]['id']}/complete", as_="org_dept",
                       json={"data": {"decision": "keep", "reason": "留任"}})
    assert refused.status_code == 422  # the x-validate rule ran, in an executor
    other = start_vetting(api, "c1")
    bpmn = (BPMN_DIR / "pre_appointment_vetting.bpmn").read_text(encoding="utf-8")
    bpmn = bpmn.replace("任前监督", "任前监督（修订）", 1)
    deployed = api.post("/api/processes/pre_appointment_vetting/versions", as_="designer",
                        data={"bpmn": (io.BytesIO(bpmn.encode()), "v.bpmn"),
                              "dmn": (io.BytesIO((BPMN_DIR / "vetting_eligibility.dmn").read_bytes()), "e.dmn")},
                        content_type="multipart/form-data")
    assert deployed.status_code == 201, deployed.json
    assert api.post(f"/api/cases/{other['id']}/migrate", json={}).status_code == 200
    assert api.post(f"/api/cases/{other['id']}/cancel", json={"reason": "撤销"}).status_code == 200
    checked, faults = check.check_cases(api.client.application.extensions["cadreflow"])
    assert checked >= 3 and faults == []
    assert booby_trapped == []


def test_timers_fire_in_an_executor(fast_api: CaseApi, fast_services: Any, booby_trapped: list[str]) -> None:
    """The worker's timer path runs no designer code in the service's process either."""
    fast_api.create_cadre("c1")
    case_id = vetting_to_notice(fast_api)
    assert fire_after_deadline(fast_services) == 1
    assert fast_api.open_elements(case_id) == ["committee_decision"]
    assert booby_trapped == []
