"""Drive a conformance process through the HTTP API, the way a designer tries what they drew.

Every step goes through the API, so every step saves the case and the next one loads it again (a
save/load round trip each time); `settle` ends each construct with `cadreflow check`'s inspection.
"""

from __future__ import annotations

import io
import time
from typing import Any

from service.usecases import bulk, check, delivery, schedules
from service.usecases.timers import fire_due_timers
from tests.api.support import CaseApi

TIMER_WAIT = 1.1  # past the PT1S deadline the conformance app gives "conformance"


class Driver:
    """One designer's session: deploy a process, start cases, act on them, read them back."""

    def __init__(self, api: CaseApi, services: Any) -> None:
        self.api = api
        self.services = services

    def deploy(self, key: str, bpmn: bytes, dmns: dict[str, bytes] | None = None) -> Any:
        files = {"bpmn": (io.BytesIO(bpmn), f"{key}.bpmn")}
        files.update({f"dmn{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate((dmns or {}).items())})
        return self.api.post(f"/api/processes/{key}/versions", as_="designer", data=files,
                             content_type="multipart/form-data")

    def deployed(self, key: str, bpmn: bytes, dmns: dict[str, bytes] | None = None) -> None:
        response = self.deploy(key, bpmn, dmns)
        assert response.status_code == 201, response.get_json()

    def start(self, key: str, **data: Any) -> dict[str, Any]:
        return self.api.start(key, "c1", **data)

    def case(self, case_id: int) -> dict[str, Any]:
        return self.api.case(case_id)

    def open(self, case_id: int) -> list[str]:
        return self.api.open_elements(case_id)

    def complete(self, case_id: int, element_id: str, **data: Any) -> dict[str, Any]:
        return self.api.complete(case_id, element_id, as_="admin", **(data or {"ok": True}))

    def complete_all(self, case_id: int, element_id: str, **data: Any) -> int:
        """Complete every open instance of an element (a multi-instance task); how many there were."""
        done = 0
        while element_id in self.open(case_id):
            self.complete(case_id, element_id, **data)
            done += 1
        return done

    def fire_timers(self) -> int:
        time.sleep(TIMER_WAIT)
        return fire_due_timers(self.services)

    def message(self, name: str, case_id: int | None = None, **data: Any) -> Any:
        body: dict[str, Any] = {"name": name, "data": data}
        if case_id is not None:
            body["case_id"] = case_id
        return self.api.post("/api/messages", as_="admin", json=body)

    def signal(self, name: str) -> Any:
        return self.api.post("/api/signals", as_="admin", json={"name": name})

    def deliver_outbox(self) -> int:
        return delivery.deliver_due(self.services)

    def fire_schedules(self) -> int:
        fired = schedules.fire_due(self.services)
        bulk.run_jobs(self.services)
        return fired

    def settle(self) -> None:
        """Every case stored so far inspects clean (state loads, task rows match, history chains)."""
        _, faults = check.check_cases(self.services, grace_seconds=3600)
        assert faults == [], faults
