"""The port through which glue functions touch the world outside their case."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol


class CaseEffects(Protocol):
    """Effects a running case may have on cadres and on other cases (implemented by the service)."""

    today: date

    def cadre_facts(self, cadre_id: str) -> dict[str, Any]:
        """Facts about a cadre that eligibility rules read."""

    def set_post(self, cadre_id: str, post: str, started_on: date | None) -> None:
        """Change a cadre's post (appointment or departure)."""

    def post_change_facts(self, cadre_id: str) -> dict[str, Any]:
        """`{audit_required, post, today}`: whether leaving the post waits for a departure audit."""

    def record_sanction(self, cadre_id: str, sanction: str, ban_until: date) -> None:
        """Record a sanction and the promotion ban it brings."""

    def record_cleared_audit(self, cadre_id: str) -> None:
        """Record that this case cleared the cadre's departure audit."""

    def record_assessment(self, cadre_id: str, year: int, grade: str) -> None:
        """Record an annual assessment grade."""

    def record_measure(self, cadre_id: str, year: int, measure: str) -> None:
        """Record the organisational measure taken on that year's assessment."""

    def open_disclosure(self, cadre_id: str, year: int) -> None:
        """Disclose this case's reports to the public for rating (述职述廉公示)."""

    def close_disclosure(self) -> dict[str, Any]:
        """End this case's disclosure: `{satisfied, basically_satisfied, dissatisfied, total, comments}`."""

    def record_integrity_evaluation(self, result: str, conclusion: str) -> None:
        """Record the public evaluation's result of this case's disclosure on the cadre."""

    def start_child_case(self, process: str, data: dict[str, Any]) -> None:
        """Open a new case linked as a child of this one, once this step is saved."""
