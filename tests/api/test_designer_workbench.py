"""Issue 11, item 4 — the designer's workbench over the API: validate without deploying, no new version for an
unchanged diagram, the diff told by element, and migrating a process's open cases (dry run first)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from service.config import PROJECT_ROOT
from service.usecases import processes
from tests.api.support import ADMONISHMENT, assert_error, start_admonishment
from tests.conformance.bpmn import definitions
from tests.conftest import actor
from tests.engine.bpmn_builder import KEY, chain_process, form_schema
from tests.service.test_check_legitimate_flows import _timed, _timer

BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"
ADMONISHMENT_BPMN = (BPMN_DIR / "admonishment.bpmn").read_text(encoding="utf-8")
CJK = re.compile(r"[\u4e00-\u9fff]")
NOT_DESIGNERS = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head",
                 "norole"]


def post_xml(api, url, body, as_="designer"):
    return api.post(url, as_=as_, data=body, content_type="application/xml")


def validate(api, key, body, as_="designer"):
    return post_xml(api, f"/api/processes/{key}/validate", body, as_)


def deploy(api, key, body, as_="designer"):
    return post_xml(api, f"/api/processes/{key}/versions", body, as_)


def versions_of(api, key):
    return [v["version"] for v in api.get(f"/api/processes/{key}").json["versions"]]


def renamed(name="受理审核（第二版）"):
    return ADMONISHMENT_BPMN.replace('name="受理审核"', f'name="{name}"', 1).encode()


def moved():
    """The shipped diagram with one shape moved: the same process, another layout."""
    text = ADMONISHMENT_BPMN.replace('bpmnElement="intake_review">\n        <dc:Bounds x="',
                                     'bpmnElement="intake_review">\n        <dc:Bounds x="1', 1)
    assert text != ADMONISHMENT_BPMN
    return text.encode()


def reformatted():
    """The shipped diagram as another modeler might save it: other quotes, spacing and attribute layout."""
    text = ADMONISHMENT_BPMN.replace("<?xml version='1.0' encoding='UTF-8'?>", '<?xml version="1.0"?>')
    text = text.replace('"/>', '" />').replace("\n    <", "\n\t<")
    text = text.replace(' attachedToRef="record_inquiry_reply" cancelActivity="true"',
                        ' attachedToRef="record_inquiry_reply"')
    assert text != ADMONISHMENT_BPMN
    return text.encode()


def chain(*ids, forms=None):
    forms = forms or {}
    return chain_process([(i, forms.get(i, form_schema())) for i in ids], {"org_dept": list(ids)})


# Validate.

class TestValidate:
    def test_valid_diagram_answers_200_and_deploys_nothing(self, api):
        """Validate says valid, and what deploying would change; the version list stays as it was."""
        for body, change in ((ADMONISHMENT_BPMN.encode(), "none"), (reformatted(), "none"), (moved(), "layout"),
                             (renamed(), "process")):
            response = validate(api, ADMONISHMENT, body)
            assert response.status_code == 200, response.json
            assert (response.json["valid"], response.json["change"], response.json["version"]) == (True, change, 1)
        assert versions_of(api, ADMONISHMENT) == [1]

    def test_a_new_process_validates_as_new(self, api):
        """A key with no version yet: valid, change "new", no version; still nothing deployed."""
        response = validate(api, KEY, chain("a"))
        assert response.status_code == 200 and (response.json["change"], response.json["version"]) == ("new", None)
        assert_error(api.get(f"/api/processes/{KEY}"), 404)

    def test_problems_come_with_each_language_and_the_element_name(self, api):
        """A broken form → 422 listing it like deploy does, plus message_zh, message_en and element_name."""
        broken = ADMONISHMENT_BPMN.replace('"title": "理由", "minLength": 1', '"title": "理由", "minLength": "one"', 1)
        error = assert_error(validate(api, ADMONISHMENT, broken.encode()), 422, code="invalid_process")
        problem = next(p for p in error["errors"] if p.get("element_id") == "intake_review")
        assert problem["element_name"] == "受理审核"
        assert CJK.search(problem["message_zh"]) and not CJK.search(problem["message_en"])
        assert problem["message"].startswith("invalid form schema (表单结构无效)")
        assert versions_of(api, ADMONISHMENT) == [1]

    def test_warnings_are_listed_with_names(self, api):
        """A valid diagram with warnings (a gateway without default flow) lists them; still 200."""
        response = validate(api, ADMONISHMENT, ADMONISHMENT_BPMN.encode())
        assert response.status_code == 200
        for warning in response.json["warnings"]:
            assert warning["severity"] == "warning" and warning["message_zh"] and warning["message_en"]
            if "element_id" in warning:
                assert warning["element_name"]

    @pytest.mark.parametrize("user", NOT_DESIGNERS)
    def test_only_designers_and_admins_validate(self, api, user):
        """Other roles → 403; no token → 401; admin → 200."""
        assert_error(validate(api, ADMONISHMENT, ADMONISHMENT_BPMN.encode(), as_=user), 403)

    def test_admin_validates_and_anonymous_is_refused(self, api):
        """admin passes every role check; a request without a token is 401."""
        assert validate(api, ADMONISHMENT, ADMONISHMENT_BPMN.encode(), as_="admin").status_code == 200
        assert_error(api.call("POST", f"/api/processes/{ADMONISHMENT}/validate", data=b"<x/>",
                              content_type="application/xml"), 401)

    @pytest.mark.parametrize("body", [
        b"<bpmn", b"not xml at all", "<?xml version='1.0'?><a>\u00e9</a>".encode("latin-1"),
                                      b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>',
                                      b"<definitions/>"])
    def test_malformed_xml_is_422(self, api, body):
        """Malformed, non-UTF-8, DOCTYPE or empty definitions → 422 with problems, never 500."""
        error = assert_error(validate(api, ADMONISHMENT, body), 422)
        assert error["errors"] and all(p["message_zh"] and p["message_en"] for p in error["errors"])

    def test_empty_body_unknown_key_long_key_and_huge_body(self, api):
        """No body → 400; a key the diagram lacks → 422; a key past 100 characters → 422; a body past the
        upload limit → 413 or 422; none deploys anything."""
        assert_error(api.post(f"/api/processes/{ADMONISHMENT}/validate", as_="designer"), 400)
        assert_error(validate(api, "no_such_process", ADMONISHMENT_BPMN.encode()), 422)
        assert_error(validate(api, "k" * 101, ADMONISHMENT_BPMN.encode()), 422)
        huge = ADMONISHMENT_BPMN.replace("</bpmn:definitions>", "<!--" + "x" * 4_100_000 + "--></bpmn:definitions>")
        assert validate(api, ADMONISHMENT, huge.encode()).status_code in (413, 422)
        assert versions_of(api, ADMONISHMENT) == [1]

    def test_multipart_with_dmn_validates_like_deploy(self, api):
        """The multipart form of deploy works for validate too (BPMN + DMN files)."""
        files = {"f0": (io.BytesIO((BPMN_DIR / "accountability.bpmn").read_bytes()), "accountability.bpmn"),
                 "f1": (io.BytesIO((BPMN_DIR / "sanction_ladder.dmn").read_bytes()), "sanction_ladder.dmn")}
        response = api.post("/api/processes/accountability/validate", as_="designer", data=files,
                            content_type="multipart/form-data")
        assert response.status_code == 200 and response.json["change"] == "none", response.json


# Deploy: what counts as a change.

class TestNoChange:
    def test_a_reformatted_diagram_is_no_change(self, api):
        """The same process saved differently → 201, created false, change "none", still version 1."""
        response = deploy(api, ADMONISHMENT, reformatted())
        assert response.status_code == 201, response.json
        assert (response.json["created"], response.json["change"], response.json["version"]) == (False, "none", 1)
        assert versions_of(api, ADMONISHMENT) == [1]

    def test_a_layout_change_is_kept_as_a_layout_version(self, api):
        """Boxes moved, nothing else → 201 version 2 marked change "layout"; deploying it again → no change."""
        first = deploy(api, ADMONISHMENT, moved())
        assert first.status_code == 201 and (first.json["version"], first.json["change"]) == (2, "layout")
        again = deploy(api, ADMONISHMENT, moved())
        assert again.status_code == 201
        assert (again.json["version"], again.json["change"], again.json["created"]) == (2, "none", False)
        assert versions_of(api, ADMONISHMENT) == [1, 2]

    def test_an_older_versions_diagram_is_no_change_and_says_which(self, api):
        """Versions are deduplicated: v1's diagram saved again after v2 → no change, equal to v1, newest 2."""
        assert deploy(api, ADMONISHMENT, renamed()).json["version"] == 2
        for body in (ADMONISHMENT_BPMN.encode(), reformatted()):
            back = deploy(api, ADMONISHMENT, body)
            assert back.status_code == 201 and back.json["created"] is False, back.json
            assert (back.json["version"], back.json["change"], back.json["newest"]) == (1, "none", 2)
        checked = validate(api, ADMONISHMENT, reformatted()).json
        assert (checked["change"], checked["version"], checked["newest"]) == ("none", 1, 2)

    def test_a_release_never_undoes_a_designers_version(self, services, api):
        """init-db's deploy of bpmn/ skips content any version has: after a designer's v2, nothing new."""
        assert deploy(api, ADMONISHMENT, renamed()).json["version"] == 2
        results = processes.deploy_files(services, actor("admin"), [BPMN_DIR / "admonishment.bpmn"])
        assert [(view["version"], created) for view, created in results] == [(1, False)]
        assert versions_of(api, ADMONISHMENT) == [1, 2]


# Diff.

class TestDiff:
    def test_diff_names_elements_aspects_and_form_fields(self, api):
        """The diff adds elements (name, kind, status, aspects), form fields and the process/layout flags."""
        extra = ADMONISHMENT_BPMN.replace(
            '"reason": {"type": "string", "title": "理由", "minLength": 1}}',
            '"reason": {"type": "string", "title": "理由", "minLength": 1}, '
            '"urgency": {"type": "string", "title": "紧急程度"}}', 1).replace('name="受理审核"', 'name="受理"', 1)
        assert deploy(api, ADMONISHMENT, extra.encode()).status_code == 201
        diff = api.get(f"/api/processes/{ADMONISHMENT}/versions/2/diff", as_="designer").json
        assert list(diff["changed"]) == ["intake_review"]  # the existing contract is kept
        element = next(e for e in diff["elements"] if e["id"] == "intake_review")
        assert (element["name"], element["kind"], element["status"], element["aspects"]) == (
            "受理", "userTask", "changed", ["form", "name"])
        assert diff["forms"][0]["added"] == [["urgency", "紧急程度"]]
        assert (diff["process_changed"], diff["layout_changed"], diff["decisions"]) == (True, False, [])

    def test_a_layout_version_diffs_as_layout_only(self, api):
        """A layout version: no element changed, process_changed false, layout_changed true."""
        deploy(api, ADMONISHMENT, moved())
        diff = api.get(f"/api/processes/{ADMONISHMENT}/versions/2/diff", query_string={"against": 1}).json
        assert (diff["elements"], diff["process_changed"], diff["layout_changed"]) == ([], False, True)

    def test_versions_that_do_not_exist_are_404(self, api):
        """A version or an `against` that does not exist, however large → 404 (or 400 past the columns), never 500."""
        for url, query in ((f"/api/processes/{ADMONISHMENT}/versions/99/diff", {"against": 1}),
                           (f"/api/processes/{ADMONISHMENT}/versions/99999999999999999999/diff", {"against": 1}),
                           (f"/api/processes/{ADMONISHMENT}/versions/1/diff", {"against": 2**40})):
            assert api.get(url, query_string=query).status_code in (404, 400)


# Migrating the open cases of a process.

def keys_named(name, value):
    """Every value under a key `name`, at any depth of a JSON value."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == name] + [x for v in value.values() for x in keys_named(name, v)]
    if isinstance(value, list):
        return [x for v in value for x in keys_named(name, v)]
    return []


def migrate_all(api, key, as_="admin", dry_run=False, **body):
    url = f"/api/processes/{key}/migrate" + ("?dry_run=1" if dry_run else "")
    return api.post(url, as_=as_, json=body) if body else api.post(url, as_=as_)


@pytest.fixture
def two_versions(api, cadre):
    """Sandbox process: v1 a → b; three cases (two at a, one at b); v2 drops b: a case at b cannot move."""
    assert deploy(api, KEY, chain("a", "b")).status_code == 201
    at_a = [api.start(KEY, "c1")["id"] for _ in range(2)]
    at_b = api.start(KEY, "c1")["id"]
    api.complete(at_b, "a", ok=True)
    changed_a = form_schema({"type": "object", "title": "改", "properties": {"ok": {"type": "boolean"}}})
    assert deploy(api, KEY, chain("a", "c", forms={"a": changed_a})).status_code == 201
    return at_a, at_b


class TestMigrateOpenCases:
    def test_admin_dry_run_lists_each_case_and_moves_nothing(self, api, two_versions):
        """Dry run: 3 open cases, 2 would move (task a, changed), 1 refused because b disappears; no case moves."""
        at_a, at_b = two_versions
        report = migrate_all(api, KEY, dry_run=True).json
        assert (report["dry_run"], report["to_version"], report["total"], report["moved"], report["refused"]) == (
            True, 2, 3, 2, 1)
        assert report["tasks"] == [{"element_id": "a", "name": "任务", "cases": 2, "changed": True}]
        assert report["refusals"][0]["cases"] == 1 and report["refusals"][0]["tasks"] == ["b"]
        by_case = {c["case_id"]: c for c in report["cases"]}
        assert [by_case[i]["status"] for i in at_a] == ["ok", "ok"] and by_case[at_b]["status"] == "refused"
        assert "b" in by_case[at_b]["reason"]
        assert all(api.case(i)["process_version"] == 1 for i in [*at_a, at_b])

    def test_admin_run_moves_each_case_and_a_refused_one_does_not_stop_the_others(self, api, two_versions):
        """The real run moves both cases at a (recorded in their history) and leaves the one at b on v1."""
        at_a, at_b = two_versions
        report = migrate_all(api, KEY).json
        assert (report["dry_run"], report["moved"], report["refused"]) == (False, 2, 1)
        assert {c["case_id"]: c["status"] for c in report["cases"]} == {at_a[0]: "migrated", at_a[1]: "migrated",
                                                                         at_b: "refused"}
        assert [api.case(i)["process_version"] for i in [*at_a, at_b]] == [2, 2, 1]
        assert any(e["action"] == "migrate" for e in api.history(at_a[0]))
        assert not any(e["action"] == "migrate" for e in api.history(at_b))
        again = migrate_all(api, KEY, dry_run=True).json
        assert (again["total"], again["refused"]) == (1, 1)  # only the case left on v1 remains

    def test_designer_dry_run_shows_counts_and_tasks_but_no_case(self, api, two_versions):
        """A designer's dry run: the same counts, tasks and reasons, and no case id anywhere."""
        at_a, at_b = two_versions
        response = migrate_all(api, KEY, as_="designer", dry_run=True)
        assert response.status_code == 200, response.json
        report = response.json
        assert "cases" not in report and (report["total"], report["moved"], report["refused"]) == (3, 2, 1)
        assert not keys_named("case_id", report)
        assert report["tasks"][0]["element_id"] == "a" and report["refusals"][0]["tasks"] == ["b"]
        assert all(api.case(i)["process_version"] == 1 for i in [*at_a, at_b])

    def test_a_designers_dry_run_past_its_bound_is_refused_before_any_case_is_stepped(self, api, services,
                                                                                    two_versions, monkeypatch):
        """A designer's dry run covers at most MIGRATION_DRY_RUN_MAX_CASES cases: past it a 422 asking for one
        version at a time, no case stepped (none locked, none logged); an admin's dry run and real run go on."""
        monkeypatch.setitem(services.settings, "MIGRATION_DRY_RUN_MAX_CASES", 2)
        stepped = []
        migrate = services.runner.migrate
        monkeypatch.setattr(services.runner, "migrate", lambda *args: stepped.append(1) or migrate(*args))
        refused = assert_error(migrate_all(api, KEY, as_="designer", dry_run=True), 422, fields={"from_version"})
        assert "3" in refused["message"] and "2" in refused["message"] and stepped == []
        monkeypatch.setitem(services.settings, "MIGRATION_DRY_RUN_MAX_CASES", 3)
        assert migrate_all(api, KEY, as_="designer", dry_run=True).json["total"] == 3 and len(stepped) == 3
        monkeypatch.setitem(services.settings, "MIGRATION_DRY_RUN_MAX_CASES", 2)
        assert migrate_all(api, KEY, dry_run=True).json["total"] == 3
        assert migrate_all(api, KEY).json["moved"] == 2

    def test_a_designers_dry_run_stops_trying_cases_at_its_time_limit(self, api, services, cadre, monkeypatch):
        """The bound counts cases, and a target version whose timer the migration computes anew can make each
        case take the whole step limit (a builtin call, out of the script limit's reach): 1,000 cases held the
        designer's request, and an executor, for over half an hour. Past MIGRATION_DRY_RUN_SECONDS no further
        case is tried; those left are counted as refused, untried, with their reason."""
        key = "slow_target"
        assert _deploy_timed(api, key, '"P30D"').status_code == 201
        assert api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200
        for _ in range(4):
            api.start(key, "c1")
        endless = '"P5D" if len(sorted([[0] * 1000000] * 1000000)) else ""'
        assert _deploy_timed(api, key, endless).status_code == 201
        monkeypatch.setitem(services.settings, "MIGRATION_DRY_RUN_SECONDS", 0.5)
        stepped = []
        migrate = services.runner.migrate
        monkeypatch.setattr(services.runner, "migrate", lambda *args: stepped.append(1) or migrate(*args))
        report = migrate_all(api, key, as_="designer", dry_run=True).json
        assert len(stepped) == 1 and (report["total"], report["moved"], report["refused"]) == (4, 0, 4), report
        untried = [r for r in report["refusals"] if "未试" in r["reason"]]
        assert [(r["cases"], r["tasks"]) for r in untried] == [(3, ["a"])], report
        assert len(migrate_all(api, key, dry_run=True).json["cases"]) == 4 and len(stepped) == 5  # an admin's: all

    def test_designer_cannot_run_it_for_real_and_other_roles_not_at_all(self, api, two_versions):
        """designer real run → 403; other roles → 403 even for a dry run; no token → 401; nothing moves."""
        at_a, _ = two_versions
        assert_error(migrate_all(api, KEY, as_="designer"), 403)
        for user in NOT_DESIGNERS:
            assert_error(migrate_all(api, KEY, as_=user, dry_run=True), 403)
        assert_error(api.call("POST", f"/api/processes/{KEY}/migrate?dry_run=1"), 401)
        assert api.case(at_a[0])["process_version"] == 1

    def test_from_version_and_to_version_pick_the_cases_and_the_target(self, api, two_versions):
        """from_version=2 selects nothing (no case runs on v2); to_version=1 from v1 is nothing to do."""
        assert migrate_all(api, KEY, dry_run=True, from_version=2).json["total"] == 0
        assert migrate_all(api, KEY, dry_run=True, to_version=1).json["total"] == 0
        assert migrate_all(api, KEY, dry_run=True, from_version=1, to_version=2).json["total"] == 3

    def test_hostile_input_is_4xx(self, api, two_versions):
        """Unknown process or versions → 404; bad types, huge numbers, unknown fields → 422; not JSON → 400."""
        assert_error(migrate_all(api, "no_such_process", dry_run=True), 404)
        assert_error(migrate_all(api, KEY, dry_run=True, to_version=9), 404)
        assert_error(migrate_all(api, KEY, dry_run=True, from_version=9), 404)
        for bad in ("2", True, 2.5, [2], 2**40, 0, -1):
            assert_error(migrate_all(api, KEY, dry_run=True, to_version=bad), 422, fields={"to_version"})
        assert_error(migrate_all(api, KEY, dry_run=True, everything=True), 422)
        assert_error(api.post(f"/api/processes/{KEY}/migrate", data=b"{not json", content_type="application/json"),
                     400)
        huge = api.post(f"/api/processes/{KEY}/migrate", data=b"[" * 100_000, content_type="application/json")
        assert huge.status_code in (400, 413)

    def test_closed_cases_are_left_alone(self, api, cadre):
        """Only open cases move: a cancelled case stays on its version."""
        closed = start_admonishment(api)["id"]
        assert api.post(f"/api/cases/{closed}/cancel", json={"reason": "重复"}).status_code == 200
        assert deploy(api, ADMONISHMENT, renamed()).status_code == 201
        report = migrate_all(api, ADMONISHMENT).json
        assert (report["total"], report["cases"]) == (0, [])
        assert api.case(closed)["process_version"] == 1


def _deploy_timed(api, key, duration):
    """A process whose task `a` has a boundary timer of `duration` (an expression), then `b`."""
    body = _timed(_timer(f"<bpmn:timeDuration>{escape(duration)}</bpmn:timeDuration>"), None)
    return api.post(f"/api/processes/{key}/versions", as_="designer", content_type="application/xml",
                    data=definitions(key, body, {"org_dept": ["a", "b"]}, ""))
