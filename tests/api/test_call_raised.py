"""What a called case's error or escalation end carries to its caller (workflows/engine/called.py): its code, held
as the outbox and the call's history entry store it (tests/conformance has the paths a caller takes)."""

from __future__ import annotations

import pytest

from tests.conformance.bpmn import chain, definitions, end, error, error_ref, escalation, escalation_ref, start


@pytest.mark.parametrize(("top", "ref"), [(error, error_ref), (escalation, escalation_ref)])
def test_an_error_or_escalation_code_longer_than_a_call_end_holds_is_refused_at_deploy(api, top, ref) -> None:
    """It deployed, and a called case ending with it failed at its end, the code past what its caller takes."""
    code = "e" * 201
    refused = api.post("/api/processes/long_code/versions", as_="designer", content_type="application/xml",
                       data=definitions("long_code", start() + end("end_x", ref(code)) + chain("start", "end_x"),
                                        top=top(code)))
    assert refused.status_code == 422, refused.json
    assert any("代码过长" in problem["message"] for problem in refused.json["error"]["errors"]), refused.json
