"""A page's own hidden fields (the CSRF token, the submission id) are never taken as a designer's form data."""

from __future__ import annotations

import re

from tests.engine.bpmn_builder import KEY, form_schema, script_process
from tests.web.test_web_shell import login


def test_a_form_field_named_like_the_csrf_token_never_stores_the_approvers_token(api, client):
    """A designer's task form with a `csrf_token` field: the page's hidden token comes first in the body, so the
    field's value was the approver's CSRF token, stored in the case's data and history for every reader of the
    case, who could then forge that approver's forms from any page of the same site (SameSite lets those send
    the session cookie). The field gets nothing: the page's own fields are not form data."""
    form = {"type": "object", "properties": {"csrf_token": {"type": "string", "title": "令牌"},
                                             "_submission": {"type": "string", "title": "编号"},
                                             "note": {"type": "string", "title": "备注"}}}
    bpmn = script_process("x = 1").replace(form_schema().encode(), form_schema(form).encode())
    deployed = api.post(f"/api/processes/{KEY}/versions", as_="designer", data=bpmn, content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    api.create_cadre("c1")
    case = api.post("/api/cases", json={"process": KEY, "cadre_id": "c1", "data": {}}).json
    task = api.get(f"/api/cases/{case['id']}").json["open_tasks"][0]
    login(client, "org_dept")
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(f"/tasks/{task['id']}/complete", data={"csrf_token": token, "note": "已核对",
                                                                  "_submission": "x"})
    assert response.status_code == 302
    stored = api.get(f"/api/cases/{case['id']}").json
    assert token not in str(stored) and "csrf_token" not in stored["data"] and "_submission" not in stored["data"]
    assert stored["data"]["note"] == "已核对"
    assert 'data-field="csrf_token"' not in page and 'data-field="_submission"' not in page  # not shown either
