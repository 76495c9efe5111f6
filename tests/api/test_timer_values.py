"""A timer's value must read as its kind says. A literal that cannot (a timeDate of "P1D", a duration) is refused
at deploy; one an expression computes is only known in the case: a case migrated onto such a version is refused
(409) and stays as it was, never a 500."""

from __future__ import annotations

import time

from tests.api.support import assert_error
from tests.api.test_designer_versions import migrate
from tests.conformance.bpmn import definitions
from tests.service.test_check_legitimate_flows import THIRTY_DAYS, _deploy, _timed, _timer

LANES = {"org_dept": ["a", "b"]}


def _upload(api, key: str, timer: str):
    return api.post(f"/api/processes/{key}/versions", as_="designer", content_type="application/xml",
                    data=definitions(key, _timed(_timer(timer), None), LANES, ""))


def test_a_literal_timer_value_of_the_wrong_kind_is_refused_at_deploy(api):
    refused = assert_error(_upload(api, "dated_by_duration", '<bpmn:timeDate>"P1D"</bpmn:timeDate>'), 422)
    assert refused["errors"][0]["element_id"] == "late" and "'P1D'" in refused["errors"][0]["message"]
    assert assert_error(_upload(api, "lasting_a_date", '<bpmn:timeDuration>"tomorrow"</bpmn:timeDuration>'), 422)
    assert _upload(api, "dated", '<bpmn:timeDate>"2031-01-01T09:00:00+08:00"</bpmn:timeDate>').status_code == 201
    assert _upload(api, "lasting", '<bpmn:timeDuration>"P5D"</bpmn:timeDuration>').status_code == 201


def test_a_case_migrated_onto_a_timer_it_cannot_read_is_refused_and_stays(api, cadre):
    key = "computed_date"
    _deploy(api, key, _timed(THIRTY_DAYS, None), LANES)
    case_id = api.start(key, "c1")["id"]
    before = api.case(case_id)
    computed = '<bpmn:timeDate>"P1D" if True else ""</bpmn:timeDate>'  # an expression: read only in the case
    assert _upload(api, key, computed).status_code == 201
    error = assert_error(migrate(api, case_id, to_version=2), 409)
    assert "cannot run on that version" in error["message"]
    after = api.case(case_id)
    kept = ("status", "process_version", "open_tasks", "next_timer_due")
    assert [after[name] for name in kept] == [before[name] for name in kept]


def test_a_literal_duration_no_case_could_reach_the_end_of_is_refused_at_deploy(api):
    """A duration that reads as one but cannot be added to a day deployed and then failed every case reaching it:
    999,999,999 years (the engine counted its months one by one, past the step's time limit), seconds past any
    date, a fraction of a year (the engine's month count takes whole numbers only)."""
    for value in ("P999999999Y", "PT99999999999999999999S", "P1.5Y"):
        began = time.monotonic()
        refused = assert_error(_upload(api, "lasting_for_ever", f'<bpmn:timeDuration>"{value}"</bpmn:timeDuration>'),
                               422)
        assert time.monotonic() - began < 5, value
        assert refused["errors"][0]["element_id"] == "late" and value in refused["errors"][0]["message"], refused
    assert _upload(api, "lasting_long", '<bpmn:timeDuration>"P500Y"</bpmn:timeDuration>').status_code == 201
