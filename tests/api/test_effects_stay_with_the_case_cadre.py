"""A case acts on the cadre it was opened for, and on no other.

The glue operations take the cadre from the case data, which a designer's script may rewrite: a case of cadre c1
whose script set `cadre_id = "c2"` recorded a sanction and a six-month promotion ban on c2 (and could read c2's
facts, change c2's post or open a case against c2), while the case stayed c1's. Such a call is now an incident at
the service task (the case held for a person), nothing recorded.
"""

from __future__ import annotations

from sqlalchemy import select

from service.db.models import Cadre, Sanction
from tests.conformance.bpmn import chain, definitions, end, script, start

SANCTION = ('<bpmn:serviceTask id="sanction"><bpmn:extensionElements>'
            '<spiffworkflow:serviceTaskOperator id="apply_sanction" resultVariable="sanctioned">'
            "<spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator>"
            "</bpmn:extensionElements></bpmn:serviceTask>")


def deploy(api, key: str, code: str) -> None:
    body = start() + script("set", code) + SANCTION + end() + chain("start", "set", "sanction", "end")
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body),
                        content_type="application/xml")
    assert response.status_code == 201, response.json
    assert api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200


def sanctions(services) -> dict[str, tuple[object, list[str]]]:
    with services.db.unit_of_work(write=False) as session:
        return {cadre.id: (cadre.promotion_ban_until,
                           list(session.scalars(select(Sanction.sanction).where(Sanction.cadre_id == cadre.id))))
                for cadre in session.scalars(select(Cadre))}


def started(api, key: str) -> dict:
    """Started by org_dept, a starter owning no lane (told only what it sent), read as admin."""
    case_id = api.start(key, "c1", as_="org_dept")["id"]
    return api.get(f"/api/cases/{case_id}", as_="admin").json


def test_a_script_naming_another_cadre_cannot_sanction_that_cadre(api, services):
    api.create_cadre("c1")
    api.create_cadre("c2")
    deploy(api, "redirect", 'cadre_id = "c2"\nfinal_sanction = "warning"')
    before = sanctions(services)
    case = started(api, "redirect")
    assert case["status"] == "incident" and case["incident"]["element_id"] == "sanction", case
    assert "c2" in case["incident"]["message"] and "本案干部" in case["incident"]["message"]
    assert sanctions(services) == before


def test_the_case_s_own_cadre_is_still_sanctioned(api, services):
    api.create_cadre("c1")
    deploy(api, "own", 'final_sanction = "warning"')
    case = started(api, "own")
    assert case["status"] == "completed", case
    ban, given = sanctions(services)["c1"]
    assert ban is not None and given == ["warning"]
