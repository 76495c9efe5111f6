"""The designer's pages through Flask's test client: validate and deploy answers in one language, the form
preview, the version diff page and the migration page (dry run, then the admin's confirmed run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from tests.web.test_web_shell import csrf_token, login

BPMN = (Path(PROJECT_ROOT) / "bpmn" / "admonishment.bpmn").read_text(encoding="utf-8")
BROKEN = BPMN.replace('"title": "理由", "minLength": 1', '"title": "理由", "minLength": "one"', 1)
RENAMED = BPMN.replace('name="受理审核"', 'name="受理审核（二）"', 1)
CJK = re.compile(r"[\u4e00-\u9fff]")
FORM = ('{"type": "object", "title": "复核", "required": ["decision"], "properties": {'
        '"decision": {"type": "string", "title": "复核意见", "enum": ["ok", "no"], "x-enumNames": ["同意", "不同意"]},'
        '"on": {"type": "string", "format": "date", "title": "复核日期"},'
        '"lead": {"type": "string", "title": "组长", "x-user-role": "audit"}}}')


def post(client, url, data, token=None):
    token = token or csrf_token(client, "/designer")
    return client.post(url, data=data, headers={"X-CSRFToken": token})


@pytest.fixture
def designer(client):
    login(client, "designer")
    return client


def version_of(api, case_id):
    return api.get(f"/api/cases/{case_id}").json["process_version"]


def english(client):
    client.set_cookie("lang", "en")


class TestValidateAndDeploy:
    def test_problems_are_in_chinese_by_name_without_xml_lines(self, designer):
        """A broken form: 422 JSON; each problem in Chinese only, with the element's name, no line number."""
        response = post(designer, "/designer/admonishment/validate", {"bpmn": BROKEN})
        assert response.status_code == 422
        problems = response.json["errors"]
        problem = next(p for p in problems if p.get("element_id") == "intake_review")
        assert problem["element_name"] == "受理审核" and problem["message"].startswith("表单结构无效")
        assert all("line" not in p and "message_en" not in p for p in problems)
        assert CJK.search(response.json["message"]) and "validate" not in response.json["message"]

    def test_problems_switch_to_english(self, designer):
        """With the English UI every problem and the summary are in English only."""
        english(designer)
        response = post(designer, "/designer/admonishment/validate", {"bpmn": BROKEN})
        assert response.status_code == 422
        texts = [p["message"] for p in response.json["errors"]] + [response.json["message"]]
        assert any(t.startswith("invalid form schema") for t in texts)
        assert not any(CJK.search(t) for t in texts), texts

    def test_validate_deploys_nothing_and_deploy_of_the_same_diagram_says_no_change(self, designer, api):
        """Validate → 200 valid; deploying the unchanged diagram → 201 created false change none; v1 only."""
        checked = post(designer, "/designer/admonishment/validate", {"bpmn": BPMN})
        assert checked.status_code == 200 and (checked.json["ok"], checked.json["change"]) == (True, "none")
        deployed = post(designer, "/designer/admonishment/deploy", {"bpmn": BPMN})
        assert deployed.status_code == 201 and (deployed.json["created"], deployed.json["change"]) == (False, "none")
        assert [v["version"] for v in api.get("/api/processes/admonishment").json["versions"]] == [1]

    def test_an_empty_diagram_and_other_roles_are_refused(self, client):
        """An empty diagram → 400 JSON; a user without the designer role → 403."""
        login(client, "designer")
        assert post(client, "/designer/admonishment/validate", {"bpmn": "  "}).status_code == 400
        client.post("/logout", data={"csrf_token": csrf_token(client, "/designer")})
        login(client, "org_dept")
        assert post(client, "/designer/admonishment/validate", {"bpmn": BPMN}, csrf_token(client, "/inbox")
                    ).status_code == 403


class TestFormPreview:
    def test_a_form_renders_as_the_task_page_renders_it(self, designer):
        """Title, choices with their names, a date input, a user field and the required mark."""
        response = post(designer, "/designer/form-preview", {"schema": FORM})
        assert response.status_code == 200 and response.json["ok"], response.json
        html = response.json["html"]
        for text in ("复核", "复核意见", "同意", "不同意", 'type="date"', 'name="lead"', "审计局的用户", 'class="req"'):
            assert text in html, text

    def test_a_broken_form_lists_deploys_problems_in_one_language(self, designer):
        """Not an object schema → ok false with the problem deploy would report, in Chinese then English."""
        response = post(designer, "/designer/form-preview", {"schema": '{"type": "array"}'})
        assert response.json == {"ok": False, "errors": [{"message": "表单必须是对象结构", "severity": "error"}]}
        english(designer)
        response = post(designer, "/designer/form-preview", {"schema": "{nope"})
        assert not response.json["ok"] and response.json["errors"][0]["message"].startswith("invalid form schema")

    def test_the_preview_needs_the_designer_role_and_a_csrf_token(self, client):
        """Without the CSRF token → 400; as org_dept → 403."""
        login(client, "designer")
        assert client.post("/designer/form-preview", data={"schema": FORM}).status_code == 400
        client.post("/logout", data={"csrf_token": csrf_token(client, "/designer")})
        login(client, "org_dept")
        assert post(client, "/designer/form-preview", {"schema": FORM}, csrf_token(client, "/inbox")).status_code == 403


class TestDiffPage:
    def test_the_diff_page_names_the_changed_element(self, designer, api):
        """After a rename: the page lists 受理审核（二） as changed in its name, with both diagrams."""
        assert api.post("/api/processes/admonishment/versions", as_="designer", data=RENAMED.encode(),
                        content_type="application/xml").status_code == 201
        page = designer.get("/designer/admonishment/diff").get_data(as_text=True)
        assert "受理审核（二）" in page and "intake_review" in page and "名称" in page
        assert 'id="diagram-v1"' in page and 'id="diagram-v2"' in page

    def test_a_single_version_and_unknown_versions(self, designer):
        """One version only: a notice; a version that does not exist → 404; an unknown process → 404."""
        assert "只有一个版本" in designer.get("/designer/admonishment/diff").get_data(as_text=True)
        assert designer.get("/designer/admonishment/diff?from=1&to=7").status_code == 404
        assert designer.get("/designer/nothing_here/diff").status_code == 404
        assert designer.get("/designer/admonishment/diff?from=x&to=99999999999999999999").status_code in (200, 404)


class TestMigratePage:
    @pytest.fixture
    def open_case(self, api):
        api.create_cadre("c1")
        case_id = api.start("admonishment", "c1", as_="discipline", trigger="complaint", summary="作风问题")["id"]
        assert api.post("/api/processes/admonishment/versions", as_="designer", data=RENAMED.encode(),
                        content_type="application/xml").status_code == 201
        return case_id

    def test_a_designer_sees_the_dry_run_counts_but_no_case_and_cannot_run_it(self, designer, open_case, api):
        """Designer: counts and tasks, no case link, no confirm button; posting the real run → 403."""
        page = post(designer, "/designer/admonishment/migrate", {"from": "", "to": "2", "action": "dry_run"})
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and 'data-count="moved">1<' in text and "intake_review" in text
        assert "/cases/" not in text and "run-migration" not in text
        assert post(designer, "/designer/admonishment/migrate", {"to": "2", "action": "run"}).status_code == 403
        assert version_of(api, open_case) == 1

    def test_an_admin_confirms_after_the_dry_run(self, client, open_case, api):
        """Admin: the dry run lists the case and offers the confirmation; the confirmed run moves it."""
        login(client, "admin")
        dry = post(client, "/designer/admonishment/migrate", {"to": "2", "action": "dry_run"}).get_data(as_text=True)
        assert f"/cases/{open_case}" in dry and 'id="run-migration"' in dry
        assert version_of(api, open_case) == 1
        done = post(client, "/designer/admonishment/migrate", {"from": "", "to": "2", "action": "run",
                                                                "confirm": "on"})
        assert done.status_code == 200 and "已迁移 1 个案件到第 2 版" in done.get_data(as_text=True)
        assert version_of(api, open_case) == 2

    def test_bad_versions_are_4xx(self, designer):
        """A version that is no number → 422 page; one that does not exist → 404 page."""
        assert post(designer, "/designer/admonishment/migrate", {"to": "x", "action": "dry_run"}).status_code == 422
        assert post(designer, "/designer/admonishment/migrate", {"to": "9", "action": "dry_run"}).status_code == 404
        assert post(designer, "/designer/admonishment/migrate",
                    {"to": "99999999999999999999", "action": "dry_run"}).status_code == 422
        for odd in ("²", "9" * 5000):  # str.isdigit holds for both; int refuses them
            assert post(designer, "/designer/admonishment/migrate", {"to": odd, "action": "dry_run"}).status_code == 422


def test_a_preview_of_odd_but_valid_schemas_never_fails(designer):
    """Schemas deploy accepts but with odd CadreFlow keywords (x-enumNames not a list, enums of numbers,
    no properties) still render; deeply nested JSON is a problem, not a 500."""
    for schema in ('{"type": "object", "properties": {"a": {"enum": ["x", "y"], "x-enumNames": 5}}}',
                   '{"type": "object", "properties": {"n": {"enum": [1, 2, 3, 4, 5, 6]}}}',
                   '{"type": "object"}',
                   '{"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}'):
        response = post(designer, "/designer/form-preview", {"schema": schema})
        assert response.status_code == 200 and response.json["ok"], (schema, response.json)
    deep = post(designer, "/designer/form-preview", {"schema": "[" * 50_000})
    assert deep.status_code == 200 and deep.json["ok"] is False


def test_a_preview_of_malformed_extension_keywords_lists_the_problem(designer):
    """`x-validate` that is no list of rules, `x-min-sum` without fields: deploy's problem, not a 500 nor "ok"."""
    for schema, named in (('{"type": "object", "x-validate": 5}', "x-validate"),
                          ('{"type": "object", "x-min-sum": {"min": 1}}', "x-min-sum")):
        response = post(designer, "/designer/form-preview", {"schema": schema})
        assert response.status_code == 200 and response.json["ok"] is False, (schema, response.json)
        assert named in response.json["errors"][0]["message"], response.json
