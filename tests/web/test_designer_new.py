"""A new process from the browser: the designer's form refuses taken, malformed and hostile keys, hostile names and
hostile files (never a 500, nothing stored), opens the modeler on a template or an uploaded file, and the template
deploys as it is through the modeler's deploy route and runs a case to `end_done` once an admin lets a role start it."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from service.config import PROJECT_ROOT
from tests.web.test_web_shell import csrf_token, login

ROTATION = (Path(PROJECT_ROOT) / "bpmn" / "rotation_review.bpmn").read_bytes()
HOSTILE_NAME = '<script>alert(1)</script>"\'&amp;'


@pytest.fixture
def designer(client):
    login(client, "designer")
    return client


def submit(client, key, name="请假审批", upload=None):
    data: dict = {"key": key, "name": name, "csrf_token": csrf_token(client, "/designer/new")}
    if upload is not None:
        data["bpmn"] = FileStorage(io.BytesIO(upload), "drawn.bpmn")
    boundary, body = encode_multipart(MultiDict(data))  # encoded once: the test client spools no large file
    return client.post("/designer/new", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def modeler_xml(response) -> str:
    """The diagram the modeler page hands to bpmn-js."""
    found = re.search(r'<script type="application/json" id="modeler-data">(.*?)</script>',
                      response.get_data(as_text=True), re.S)
    return json.loads(found.group(1))["xml"]


def deployed_keys(api) -> set[str]:
    return {p["key"] for p in api.get("/api/processes").json}


class TestTheForm:
    def test_the_catalogue_links_the_form_and_the_form_says_who_sets_starters(self, designer):
        assert 'href="/designer/new"' in designer.get("/designer").get_data(as_text=True)
        page = designer.get("/designer/new").get_data(as_text=True)
        assert 'name="key"' in page and 'name="bpmn"' in page and "/admin/roles" in page

    def test_a_taken_key_is_a_409_in_the_users_language(self, designer, api):
        response = submit(designer, "admonishment")
        text = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 409 and "流程 admonishment 已存在" in text
        designer.set_cookie("lang", "en")
        text = html.unescape(submit(designer, "admonishment").get_data(as_text=True))
        assert "a process admonishment already exists" in text and "已存在" not in text

    @pytest.mark.parametrize("key", ["1leave", "leave approval", "../etc/passwd", "a/b", "a:b", "{ns}b",
                                     '<script>x</script>', 'a"b', "a\x00b", "", "   ", "k" * 101])
    def test_malformed_and_hostile_keys_are_refused_and_nothing_is_stored(self, designer, api, key):
        before = deployed_keys(api)
        response = submit(designer, key)
        text = response.get_data(as_text=True)
        assert response.status_code == 422 and ('id="err-key"' in text or "\x00" in key), text  # NUL: refused earlier
        assert "<script>x</script>" not in text  # what was typed comes back escaped
        assert deployed_keys(api) == before

    @pytest.mark.parametrize(("name", "field"), [("", "err-name"), ("名" * 201, "err-name"), ("请\x00假", None)])
    def test_empty_long_and_unstorable_names_are_refused(self, designer, name, field):
        response = submit(designer, "leave_approval", name)
        assert response.status_code == 422
        assert field is None or f'id="{field}"' in response.get_data(as_text=True)


class TestStartingDiagrams:
    def test_a_hostile_name_is_escaped_in_the_template_and_in_the_page(self, designer, api):
        response = submit(designer, "leave_approval", HOSTILE_NAME)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and "<script>alert(1)" not in page
        assert 'id="canvas"' in page and "新流程，尚未部署" in page
        assert "版本对比" not in page  # nothing to compare yet
        xml = modeler_xml(response)
        assert f'name="{html.escape(HOSTILE_NAME)}"'.replace("&#x27;", "'") in xml
        assert "leave_approval" not in deployed_keys(api)  # nothing stored before deploy

    def test_an_uploaded_file_is_taken_over_under_the_key(self, designer):
        drawn_elsewhere = ROTATION.replace(b'isExecutable="true"', b'isExecutable="false"', 1)
        response = submit(designer, "rotation_copy", "轮岗（副本）", drawn_elsewhere)
        assert response.status_code == 200
        xml = modeler_xml(response)
        assert 'isExecutable="true"' in xml
        assert 'id="rotation_copy"' in xml and 'processRef="rotation_copy"' in xml and 'name="轮岗（副本）"' in xml
        assert 'id="rotation_review"' not in xml and 'processRef="rotation_review"' not in xml

    @pytest.mark.parametrize(("upload", "said"), [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "不允许 DOCTYPE"),
        ("<x/>".encode("utf-16"), "UTF-8"),
        (b"\x89PNG\r\n\x1a\n not xml", "UTF-8"),
        (b"hello", "XML"),
        (b"<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'/>", "包含 0 个"),
        (ROTATION.replace(b"</bpmn:definitions>",
                          b'<bpmn:process id="second" isExecutable="true"/></bpmn:definitions>'), "包含 2 个"),
        (b"<x>" + b" " * 2_000_001 + b"</x>", "文件过大"),
    ])
    def test_hostile_files_are_refused_with_a_reason(self, designer, api, upload, said):
        response = submit(designer, "from_file", upload=upload)
        assert response.status_code == 422 and said in response.get_data(as_text=True)
        assert "from_file" not in deployed_keys(api)

    def test_other_roles_may_not_open_the_form(self, client):
        login(client, "org_dept")
        assert client.get("/designer/new").status_code == 403
        response = client.post("/designer/new", data={"key": "x", "name": "x",
                                                      "csrf_token": csrf_token(client, "/inbox")})
        assert response.status_code == 403


def test_the_template_deploys_as_it_is_and_runs_a_case_to_end_done(designer, api):
    """The template through the modeler's own deploy route: v1 on /designer; an admin lets org_dept start it;
    a case runs from its start through the one task to `end_done`."""
    xml = modeler_xml(submit(designer, "leave_approval", "请假审批"))
    deployed = designer.post("/designer/leave_approval/deploy", data={"bpmn": xml},
                             headers={"X-CSRFToken": csrf_token(designer, "/designer")})
    assert deployed.status_code == 201 and (deployed.json["created"], deployed.json["version"]) == (True, 1)
    card = re.search(r'data-process="leave_approval".*?</section>', designer.get("/designer").get_data(as_text=True),
                     re.S).group(0)
    assert "请假审批" in card and ">v1<" in card
    api.create_cadre("c1")
    assert api.post("/api/cases", as_="org_dept", json={"process": "leave_approval", "cadre_id": "c1",
                                                        "data": {}}).status_code == 403
    assert api.put("/api/processes/leave_approval/starters", json={"roles": ["org_dept"]}).status_code == 200
    case = api.start("leave_approval", as_="org_dept")
    assert [t["element_id"] for t in case["open_tasks"]] == ["review"]
    done = api.complete(case["id"], "review", approve=True)
    assert (done["status"], done["outcome"], done["data"]["approve"]) == ("completed", "done", True)


def test_a_key_of_chinese_letters_deploys_and_its_download_has_a_latin_1_header(designer):
    """The BPMN schema's ids take Chinese letters; a server sends headers in Latin-1, so the file's name goes in
    RFC 6266's UTF-8 form (a raw 审批 in the header made waitress fail the download)."""
    xml = modeler_xml(submit(designer, "请假", "请假"))
    deployed = designer.post("/designer/请假/deploy", data={"bpmn": xml},
                             headers={"X-CSRFToken": csrf_token(designer, "/designer")})
    assert deployed.status_code == 201
    header = designer.get("/designer/请假/versions/1.bpmn").headers["Content-Disposition"]
    header.encode("latin-1")
    assert "filename*=UTF-8''%E8%AF%B7%E5%81%87-v1.bpmn" in header


def modeler_base(response) -> int:
    found = re.search(r'<script type="application/json" id="modeler-data">(.*?)</script>',
                      response.get_data(as_text=True), re.S)
    return json.loads(found.group(1))["baseVersion"]


def test_two_designers_drafting_one_key_cannot_overwrite_each_other(app, designer):
    """Both open 新建流程 with the same free key; the first deploys v1; the second's deploy (based on no version)
    is a 409 in the page's language, and v1 stays the first designer's."""
    other = app.test_client()
    login(other, "designer")
    mine, theirs = submit(designer, "leave_approval", "请假审批"), submit(other, "leave_approval", "休假审批")
    assert modeler_base(mine) == modeler_base(theirs) == 0
    deployed = designer.post("/designer/leave_approval/deploy?base_version=0", data={"bpmn": modeler_xml(mine)},
                             headers={"X-CSRFToken": csrf_token(designer, "/designer")})
    assert deployed.status_code == 201 and deployed.json["version"] == 1
    refused = other.post("/designer/leave_approval/deploy?base_version=0", data={"bpmn": modeler_xml(theirs)},
                         headers={"X-CSRFToken": csrf_token(other, "/designer")})
    assert refused.status_code == 409 and refused.json["ok"] is False and "已被他人占用" in refused.json["message"]
    edit = designer.get("/designer/leave_approval/edit")
    assert modeler_base(edit) == 1 and "请假审批" in modeler_xml(edit)
