"""Fixtures of the service tests: the same fast template copies as the API tests, and the cases and cadres
that more than one file of them starts from."""

import pytest

from service.usecases import bulk
from tests.api.support import api, app, cadre, fast_api, fast_app, fast_services, start_admonishment, template  # noqa: F401


@pytest.fixture
def county(api, monkeypatch):  # noqa: F811 - the api fixture imported above
    """25 leading cadres, 5 staff; batches of 10, so a job takes several passes."""
    monkeypatch.setattr(bulk, "BATCH", 10)
    for number in range(30):
        api.create_cadre(f"k{number:03}", post_level="leading" if number < 25 else "staff")
    return api


@pytest.fixture
def three_cases(api, cadre) -> list[int]:  # noqa: F811 - the api and cadre fixtures imported above
    """Three admonishment cases with a claim and completions in their history, faultless to begin with."""
    case_ids = []
    for _ in range(3):
        case_id = start_admonishment(api)["id"]
        task = api.open_task(case_id, "intake_review")
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="discipline").status_code == 200
        api.complete(case_id, "intake_review", form="talk", reason="情况属实，约谈")
        api.complete(case_id, "conduct_talk", talk_date="2024-05-01", minutes="谈话记录")
        case_ids.append(case_id)
    return case_ids
