"""Each BPMN construct deploy accepts runs to the right end over the HTTP API; each it refuses is refused
with a 422 that names the element and says what to draw instead (bpmn/CONVENTIONS.md has the table)."""

from __future__ import annotations

import re

import pytest

from tests.conformance.constructs import CONSTRUCTS, REFUSED_DMNS
from tests.conformance.driver import Driver

RUNS = [name for name, construct in CONSTRUCTS.items() if construct.drive is not None]
REFUSED = [name for name, construct in CONSTRUCTS.items() if construct.refused is not None]


def key_of(name: str) -> str:
    return "cf_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@pytest.mark.parametrize("name", RUNS)
def test_construct_runs_to_the_right_end(driver: Driver, name: str) -> None:
    """Deploy, start, act on it as a person, a clock or another case would; every stored case inspects clean."""
    CONSTRUCTS[name].drive(driver, key_of(name))
    driver.settle()


@pytest.mark.parametrize("name", REFUSED)
def test_construct_is_refused_naming_the_element_and_the_alternative(driver: Driver, name: str) -> None:
    """422 at deploy, the problem on the element, its message saying what to use instead; nothing deployed."""
    construct, key = CONSTRUCTS[name], key_of(name)
    response = driver.deploy(key, construct.refused(key), REFUSED_DMNS.get(name, lambda _: {})(key))
    assert response.status_code == 422, response.get_json()
    problems = response.get_json()["error"]["errors"]
    named = [p for p in problems if p.get("element_id") == construct.element]
    assert named, problems
    assert all(word in named[0]["message"] for word in construct.words), named[0]["message"]
    assert driver.api.get(f"/api/processes/{key}", as_="designer").status_code == 404


def test_service_task_parameters_are_checked_against_the_operation(driver: Driver) -> None:
    """A missing required parameter and an unknown one: 422 naming both on the service task."""
    from tests.conformance.bpmn import chain, definitions, end, start

    task = ('<bpmn:serviceTask id="svc"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator '
            'id="start_admonishment" resultVariable="r"><spiffworkflow:parameters>'
            '<spiffworkflow:parameter id="trigger" type="str" value="&quot;complaint&quot;"/>'
            '<spiffworkflow:parameter id="colour" type="str" value="&quot;red&quot;"/>'
            "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>")
    document = definitions("cf_params", start() + task + end() + chain("start", "svc", "end"))
    response = driver.deploy("cf_params", document)
    assert response.status_code == 422
    messages = [p["message"] for p in response.get_json()["error"]["errors"] if p.get("element_id") == "svc"]
    assert any("'summary'" in m for m in messages) and any("'colour'" in m for m in messages), messages
