"""Working on cases in the browser UI: files and comments on the case page, reassign and extend on the task
page, and my absence page."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from flask import get_flashed_messages
from sqlalchemy import update

from service.db.models import Attachment
from service.errors import Invalid
from service.web import absence, admin, admin_roles, auth, cases, inbox, notifications
from service.web.errors import flash_error
from tests.api import support
from tests.api.support import start_accountability, start_admonishment
from tests.engine.test_returns import with_return
from tests.web.test_web_shell import csrf_token, login

template, app, api, cadre = support.template, support.app, support.api, support.cadre


def text(response) -> str:
    return response.get_data(as_text=True)


class TestCasePage:
    def test_upload_list_and_download_a_file(self, client, app, api, cadre):
        case_id = start_accountability(api)["id"]
        login(client, "discipline")
        page = f"/cases/{case_id}"
        response = client.post(f"{page}/attachments", content_type="multipart/form-data", data={
            "csrf_token": csrf_token(client, page), "file": (io.BytesIO("核查报告".encode()), "报告.txt")})
        assert response.status_code == 302
        shown = text(client.get(page))
        assert "附件已上传" in shown and "报告.txt" in shown
        link = re.search(r'href="(/attachments/\d+)"', shown).group(1)
        download = client.get(link)
        assert download.status_code == 200 and download.data == "核查报告".encode()
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        with app.extensions["cadreflow"].db.unit_of_work() as session:  # a type no upload is sniffed as, by SQL
            session.execute(update(Attachment).values(content_type="text/html"))
        assert client.get(link).mimetype == "application/octet-stream"
        login(client, "audit")  # owns no lane of accountability
        assert client.get(link).status_code == 404

    def test_an_unsupported_file_is_refused_with_a_message(self, client, api, cadre):
        case_id = start_accountability(api)["id"]
        login(client, "discipline")
        page = f"/cases/{case_id}"
        client.post(f"{page}/attachments", content_type="multipart/form-data", data={
            "csrf_token": csrf_token(client, page), "file": (io.BytesIO(b"\x7fELF" + b"\x00" * 40), "a.pdf")})
        assert "不支持的文件类型" in text(client.get(page))

    def test_comment_on_a_case(self, client, api, cadre):
        case_id = start_accountability(api)["id"]
        login(client, "discipline_head")
        page = f"/cases/{case_id}"
        response = client.post(f"{page}/comments", data={"csrf_token": csrf_token(client, page), "text": "尽快核实"})
        assert response.status_code == 302
        shown = text(client.get(page))
        assert "意见已发表" in shown and "尽快核实" in shown and "discipline_head" in shown


class TestTaskPage:
    def test_the_lane_head_sees_reassign_and_extend_and_uses_them(self, client, api, cadre):
        case = start_accountability(api)
        task_id = case["open_tasks"][0]["id"]
        login(client, "discipline_head")
        page = f"/tasks/{task_id}"
        shown = text(client.get(page))
        assert 'id="assign"' in shown and 'id="extend"' in shown and '<option value="discipline2">' in shown
        token = csrf_token(client, page)
        assert client.post(f"{page}/assign", data={"csrf_token": token, "username": "discipline2"}).status_code == 302
        assert "已转交给 discipline2" in text(client.get(page))
        client.post(f"{page}/extend", data={"csrf_token": token, "until": "2099-01-01", "reason": "需补充材料"})
        assert "办理期限已延长" in text(client.get(page))
        assert api.open_task(case["id"], "preliminary_verification")["due_at"].startswith("2099-01-01")
        timeline = text(client.get(f"/cases/{case['id']}"))
        assert "交由 discipline2" in timeline and "理由：需补充材料" in timeline

    def test_a_plain_role_holder_sees_neither_form(self, client, api, cadre):
        task_id = start_accountability(api)["open_tasks"][0]["id"]
        login(client, "discipline")
        shown = text(client.get(f"/tasks/{task_id}"))
        assert 'id="assign"' not in shown and 'id="extend"' not in shown

    def test_a_task_without_a_deadline_offers_no_extension(self, client, api, cadre):
        """The lane head may reassign it, but there is no deadline to extend: no form (the action is 409)."""
        case_id = support.start_vetting(api)["id"]
        task = api.open_task(case_id, "solicit_family_opinion")
        login(client, "org_head")
        shown = text(client.get(f"/tasks/{task['id']}"))
        assert task["due_at"] is None and 'id="assign"' in shown and 'id="extend"' not in shown

    def test_a_refused_reassignment_is_flashed(self, client, api, cadre):
        task_id = start_accountability(api)["open_tasks"][0]["id"]
        login(client, "discipline_head")
        page = f"/tasks/{task_id}"
        client.post(f"{page}/assign", data={"csrf_token": csrf_token(client, page), "username": "audit"})
        assert "该用户没有此任务所属角色" in text(client.get(page))


class TestAbsencePage:
    def test_set_and_end_an_absence(self, client, api):
        login(client, "audit2")
        token = csrf_token(client, "/account/absence")
        response = client.post("/account/absence", data={"csrf_token": token, "username": "audit",
                                                         "until": "2099-01-01"})
        assert response.status_code == 302
        shown = text(client.get("/account/absence"))
        assert "已设置外出代理" in shown and 'id="current-absence"' in shown
        assert api.get("/api/me/substitute", as_="audit2").json["substitute"] == "audit"
        client.post("/account/absence/end", data={"csrf_token": token})
        assert 'id="current-absence"' not in text(client.get("/account/absence"))
        assert api.get("/api/me/substitute", as_="audit2").json is None


class TestReturnButton:
    def test_a_returnable_task_shows_the_button_and_returning_works(self, client, api, cadre):
        from tests.api.support import start_admonishment
        from tests.engine.test_returns import with_return

        response = api.post("/api/processes/admonishment/versions", as_="designer",
                            data=with_return("admonishment", "conduct_talk"), content_type="application/xml")
        assert response.status_code == 201, response.json
        case_id = start_admonishment(api)["id"]
        intake = api.open_task(case_id, "intake_review")
        login(client, "discipline")
        assert 'id="return"' not in text(client.get(f"/tasks/{intake['id']}"))  # not marked allowReturn
        api.complete(case_id, "intake_review", form="talk", reason="属实")
        talk = api.open_task(case_id, "conduct_talk")
        page = f"/tasks/{talk['id']}"
        shown = text(client.get(page))
        assert 'id="return"' in shown and 'id="return-confirm"' in shown
        response = client.post(f"{page}/return", data={"csrf_token": csrf_token(client, page), "reason": "重审",
                                                       "confirm": "on"})
        assert response.status_code == 302 and response.headers["Location"] == "/inbox"
        assert "已退回上一步" in text(client.get("/inbox"))
        assert api.open_elements(case_id) == ["intake_review"]


class TestDeactivation:
    def test_the_admin_page_deactivating_a_holder_frees_its_task_and_the_case_says_why(self, client, api, cadre):
        """Deactivated on /admin/users: discipline2's task goes back to the discipline pool, and the case page's
        timeline gives the reason in the page's language."""
        case = start_accountability(api)
        task_id = case["open_tasks"][0]["id"]
        assert api.post(f"/api/tasks/{task_id}/claim", as_="discipline2").status_code == 200
        login(client, "admin")
        response = client.post("/admin/users/discipline2/active",
                               data={"csrf_token": csrf_token(client, "/admin/users"), "active": "0"})
        assert response.status_code == 302
        assert api.get(f"/api/tasks/{task_id}").json["assignee"] is None
        login(client, "discipline")
        shown = text(client.get(f"/cases/{case['id']}"))
        assert "退回认领" in shown and "理由：账号停用" in shown and "account deactivated" not in shown
        client.set_cookie("lang", "en")
        shown = text(client.get(f"/cases/{case['id']}"))
        assert "account deactivated" in shown and "账号停用" not in shown


def flashed_errors(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash flash-error">(.*?)</p>', page)]


def label_of(page: str, field_id: str) -> str:
    """The text of the form's label for one field, as the page shows it."""
    return html.unescape(re.search(rf'<label for="{field_id}">(.*?)</label>', page).group(1)).strip()


class TestFlashedFieldProblems:
    """A refused form's field problems are flashed under the labels the form shows, in the page's language."""

    @pytest.mark.parametrize(("language", "required", "colon"), [("zh", "必填", "："), ("en", "required", ": ")])
    def test_a_return_without_a_reason_names_the_reason_field_by_its_label(self, client, api, cadre, language,
                                                                           required, colon):
        returnable = api.post("/api/processes/admonishment/versions", as_="designer", content_type="application/xml",
                              data=with_return("admonishment", "conduct_talk"))
        assert returnable.status_code == 201, returnable.json
        case_id = start_admonishment(api)["id"]
        api.complete(case_id, "intake_review", form="talk", reason="属实")
        task_id = api.open_task(case_id, "conduct_talk")["id"]
        client.set_cookie("lang", language)
        login(client, "discipline")
        page = f"/tasks/{task_id}"
        client.post(f"{page}/return", data={"csrf_token": csrf_token(client, page), "reason": " ", "confirm": "on"})
        shown = text(client.get(page))
        assert f"{label_of(shown, 'return-reason')}{colon}{required}" in flashed_errors(shown)
        assert not any(m.startswith("reason") for m in flashed_errors(shown))

    @pytest.mark.parametrize(("language", "required", "colon"), [("zh", "必填", "："), ("en", "required", ": ")])
    def test_a_cancellation_without_a_reason_and_an_extension_into_the_past(self, client, api, cadre, language,
                                                                             required, colon):
        case = start_accountability(api)
        client.set_cookie("lang", language)
        login(client, "admin")
        page = f"/cases/{case['id']}"
        client.post(f"{page}/cancel", data={"csrf_token": csrf_token(client, page), "reason": ""})
        shown = text(client.get(page))
        assert f"{label_of(shown, 'reason')}{colon}{required}" in flashed_errors(shown)
        task = f"/tasks/{case['open_tasks'][0]['id']}"
        client.post(f"{task}/extend", data={"csrf_token": csrf_token(client, task), "until": "2000-01-01",
                                            "reason": "材料需补充"})
        shown = text(client.get(task))
        assert [m for m in flashed_errors(shown) if m.startswith(label_of(shown, "extend-until") + colon)]
        assert not any(m.startswith("until") for m in flashed_errors(shown))

    def test_a_field_the_form_does_not_label_is_named_by_its_key(self, app):
        with app.test_request_context(headers={"Cookie": "lang=en"}):
            flash_error(Invalid("bad (错)", {"mystery": "必填 (required)", "reason": "必填 (required)"}),
                        {"reason": "Reason"})
            assert get_flashed_messages() == ["bad", "mystery: required", "Reason: required"]

    def test_every_flashed_label_is_one_its_form_shows(self, app):
        """The label tables beside the views name each field as its template labels it (the Chinese message id)."""
        templates = Path(app.root_path) / "web" / "templates"
        tables = {"task.html": [inbox.ASSIGN_LABELS, inbox.EXTEND_LABELS, inbox.RETURN_LABELS],
                  "case.html": [cases.CANCEL_LABELS, cases.ATTACH_LABELS, cases.COMMENT_LABELS],
                  "absence.html": [absence.ABSENCE_LABELS], "password.html": [auth.PASSWORD_LABELS],
                  "admin/users.html": [admin.USER_LABELS, admin.RESET_LABELS, admin.MAIL_LABELS],
                  "admin/roles.html": [admin_roles.ROLE_LABELS, admin_roles.STARTER_LABELS],
                  "_mail_settings.html": [notifications.MAIL_LABELS]}
        with app.test_request_context(headers={"Cookie": "lang=zh"}):
            for template, labels in tables.items():
                source = (templates / template).read_text()
                missing = [str(label) for table in labels for label in table.values()
                           if f"_('{label}')" not in source]
                assert missing == [], template

    @pytest.mark.parametrize(("language", "label", "problem"),
                             [("zh", "重置密码", "至少 10 个字符"), ("en", "Reset password", "at least 10 characters")])
    def test_the_admin_page_names_a_refused_password_by_its_column(self, client, language, label, problem):
        client.set_cookie("lang", language)
        login(client, "admin")
        client.post("/admin/users/audit2/password", data={"csrf_token": csrf_token(client, "/admin/users"),
                                                          "password": "short"})
        errors = flashed_errors(text(client.get("/admin/users")))
        assert [m for m in errors if m.startswith(label) and problem in m], errors
