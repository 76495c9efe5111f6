"""End to end: `cadreflow serve` mails a new task's notification through its own worker thread to a real SMTP server."""

from __future__ import annotations

import pytest

from tests.e2e.support import running_server
from tests.smtp import smtp_server

pytestmark = pytest.mark.e2e
ROLES = ["org_dept", "discipline", "admin"]


def test_serve_mails_a_new_task_to_its_holder_and_shows_it_in_the_app(role_users_template, tmp_path):
    """discipline, with an address, gets the notification over HTTP at once and the mail shortly after,
    sent by the service's worker thread (never by the request)."""
    with smtp_server() as smtp, running_server(role_users_template, tmp_path, **smtp.settings()) as http:
        for role in ROLES:
            http.login(role)
        status, _ = http.request("PATCH", "/api/me/mail", {"email": "discipline@example.gov.cn"}, as_="discipline")
        assert status == 200
        status, _ = http.request("POST", "/api/cadres", {"id": "m1", "name": "吴磊", "unit": "县农业农村局",
                                                         "post": "局长", "post_level": "leading",
                                                         "post_started_on": "2019-03-01"}, as_="org_dept")
        assert status == 201
        status, case = http.request("POST", "/api/cases", {"process": "accountability", "cadre_id": "m1", "data": {
            "source": "web", "category": "inaction", "allegation": "长期不作为"}}, as_="discipline")
        assert status == 201, case
        status, page = http.request("GET", "/api/notifications?unread=1", as_="discipline")
        assert status == 200 and [n["kind"] for n in page["items"]] == ["new_task"] and page["unread"] == 1
        [mail] = smtp.wait_for(1)
        assert mail.rcpt_tos == ["discipline@example.gov.cn"]
        assert "新任务：初步核实" in mail.subject and f"/tasks/{case['open_tasks'][0]['id']}" in mail.body
        assert "吴磊" not in mail.body
