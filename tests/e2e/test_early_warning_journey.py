"""Issue 15's "done when", as a discipline inspector meets it on a real `cadreflow serve`: three public reports
linked to one cadre and the next day's scan later, the cadre is on the watch list as 预警 with its signals, a
提醒谈话 is open, the integrity ledger lists the three reports and prints; a second scan opens nothing new;
an outsider role reads neither ledger nor watch list."""

from __future__ import annotations

import io
import re
import urllib.request
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from service.usecases.context import county_today
from tests.e2e.support import Http, running_server

pytestmark = pytest.mark.e2e
ROLES = ["discipline", "org_dept", "audit"]
CADRE = {"id": "w1", "name": "预警对象", "unit": "县水利局", "post": "局长", "post_level": "leading",
         "post_started_on": "2022-03-01"}
REPORT = {"channel": "hotline", "subject_name": "预警对象", "subject_unit": "县水利局", "category": "inaction",
          "content": "反映工作作风问题"}


def ok(http: Http, method: str, path: str, body: object = None, as_: str = "discipline") -> object:
    status, answer = http.request(method, path, body, as_=as_)
    assert status in (200, 201), (status, answer)
    return answer


def report_about(http: Http, cadre_id: str) -> None:
    case = ok(http, "POST", "/api/cases", {"process": "public_report", "cadre_id": None, "data": REPORT})
    [triage] = case["open_tasks"]
    ok(http, "POST", f"/api/tasks/{triage['id']}/claim")
    ok(http, "POST", f"/api/tasks/{triage['id']}/complete",
       {"data": {"decision": "transfer", "transfer_to": "县信访局", "cadre_id": cadre_id}})


def pdf_text(http: Http, path: str, as_: str) -> str:
    request = urllib.request.Request(http.base + path, headers={"Authorization": f"Bearer {http.tokens[as_]}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(response.read()))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def test_three_reports_and_a_scan_later_put_the_cadre_on_the_watch_list(role_users_template: Path,
                                                                        tmp_path: Path) -> None:
    with running_server(role_users_template, tmp_path) as http:
        for role in ROLES:
            http.login(role)
        ok(http, "POST", "/api/cadres", CADRE, as_="org_dept")
        for _ in range(3):
            report_about(http, "w1")

        tomorrow = (county_today(ZoneInfo("Asia/Shanghai"))() + timedelta(days=1)).isoformat()  # the server's TIMEZONE
        scanned = http.cli("early-warning-scan", "--on", tomorrow)
        assert scanned.returncode == 0, scanned.stderr
        assert "1 提醒谈话 opened" in scanned.stdout and "cadre w1: case #" in scanned.stdout

        [entry] = [e for e in ok(http, "GET", "/api/watchlist")["items"] if e["cadre_id"] == "w1"]
        assert entry["level"] == "alert" and entry["signals"]["reports_12m"] == 3 and entry["reason"]
        talk = ok(http, "GET", f"/api/cases/{entry['case_id']}")
        assert (talk["process"], talk["status"], talk["data"]["trigger"]) == ("admonishment", "open",
                                                                              "early_warning")

        ledger = ok(http, "GET", "/api/cadres/w1/ledger?kind=integrity")
        assert [item["kind"] for item in ledger["items"]] == ["public_report"] * 3
        printed = pdf_text(http, "/api/cadres/w1/ledger.pdf?kind=integrity", "discipline")
        assert "廉政台账" in printed and "预警对象" in printed and printed.count("信访举报") >= 3

        again = ok(http, "POST", "/api/early-warning-scan", {"on": tomorrow})
        assert again["opened"] == [] and again["alert"] == 1
        cases = ok(http, "GET", "/api/cadres/w1")["cases"]
        assert [c["process"] for c in cases].count("admonishment") == 1

        assert http.request("GET", "/api/cadres/w1/ledger?kind=integrity", as_="audit")[0] == 404
        assert http.request("GET", "/api/watchlist", as_="audit")[0] == 403
