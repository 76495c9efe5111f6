"""ISSUE 3 — versions (immutable, deduplicated, diff, export), case migration, and incidents with retry."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from service.usecases.casehistory import lock_case
from tests.api.support import ACCOUNTABILITY, ADMONISHMENT, accountability_to_review, assert_error, start_admonishment
from tests.engine.bpmn_builder import KEY, chain_process, document, form_schema, user_task

BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"
SANCTION_DMN = (BPMN_DIR / "sanction_ladder.dmn").read_bytes()
ACCOUNTABILITY_BPMN = (BPMN_DIR / "accountability.bpmn").read_text(encoding="utf-8")
SETTLE_SCRIPT = 'final_sanction = final_sanction if decision == "adjust" else proposed_sanction'
ADMONISHMENT_BPMN = (BPMN_DIR / "admonishment.bpmn").read_text(encoding="utf-8")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def deploy(api, key, body, as_="designer"):
    return api.post(f"/api/processes/{key}/versions", as_=as_, data=body, content_type="application/xml")


def deploy_files(api, key, files, as_="designer"):
    data = {f"file{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate(files.items())}
    return api.post(f"/api/processes/{key}/versions", as_=as_, data=data, content_type="multipart/form-data")


def deployed(response, version):
    assert response.status_code == 201, response.get_json()
    assert response.json["version"] == version and response.json["created"] is True, response.json
    return response.json


def accountability_with_script(script):
    text = ACCOUNTABILITY_BPMN.replace(f"<bpmn:script>{SETTLE_SCRIPT}</bpmn:script>",
                                       f"<bpmn:script>{script}</bpmn:script>")
    assert text != ACCOUNTABILITY_BPMN
    return text.encode()


def deploy_accountability(api, script, version):
    files = {"accountability.bpmn": accountability_with_script(script), "sanction_ladder.dmn": SANCTION_DMN}
    return deployed(deploy_files(api, ACCOUNTABILITY, files), version)


def admonishment_variant(name="受理审核（第二版）", extra_field=False):
    text = ADMONISHMENT_BPMN.replace('name="受理审核"', f'name="{name}"', 1)
    if extra_field:
        text = text.replace('"reason": {"type": "string", "title": "理由", "minLength": 1}}, '
                            '"required": ["form", "reason"]',
                            '"reason": {"type": "string", "title": "理由", "minLength": 1}, '
                            '"urgency": {"type": "string", "title": "紧急程度", "enum": ["high", "low"]}}, '
                            '"required": ["form", "reason", "urgency"]', 1)
        assert "urgency" in text
    assert text != ADMONISHMENT_BPMN
    return text.encode()


def chain(*ids, forms=None):
    """start → the user tasks (org_dept) → end_done, as process `sandbox_case`."""
    forms = forms or {}
    return chain_process([(i, forms.get(i, form_schema())) for i in ids], {"org_dept": list(ids)})


def start_sandbox(api, cadre_id="c1"):
    response = api.post("/api/cases", json={"process": KEY, "cadre_id": cadre_id, "data": {}})
    assert response.status_code == 201, response.json
    return response.json


def migrate(api, case_id, as_="admin", dry_run=False, **body):
    url = f"/api/cases/{case_id}/migrate" + ("?dry_run=1" if dry_run else "")
    return api.post(url, as_=as_, json=body) if body else api.post(url, as_=as_)


def actions(api, case_id):
    return [entry["action"] for entry in api.history(case_id)]


# Versions.

def test_every_deploy_is_a_new_immutable_version_with_hash_author_time(api):
    """v2 (designer) and v3 (admin) get their own hash, author and time; each version's XML stays as deployed."""
    v2, v3 = admonishment_variant("第二版"), admonishment_variant("第三版")
    deployed(deploy(api, ADMONISHMENT, v2), 2)
    deployed(deploy(api, ADMONISHMENT, v3, as_="admin"), 3)
    versions = api.get(f"/api/processes/{ADMONISHMENT}").json["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["deployed_by"] for v in versions] == ["system", "designer", "admin"]
    hashes = [v["content_hash"] for v in versions]
    assert all(HEX64.match(h) for h in hashes) and len(set(hashes)) == 3
    times = [datetime.fromisoformat(v["deployed_at"]) for v in versions]
    assert times == sorted(times)
    for number, content in ((1, (BPMN_DIR / "admonishment.bpmn").read_bytes()), (2, v2), (3, v3)):
        xml = api.get(f"/api/processes/{ADMONISHMENT}/bpmn", query_string={"version": number})
        assert xml.status_code == 200 and xml.data == content
    assert api.get(f"/api/processes/{ADMONISHMENT}/bpmn").data == v3


def test_identical_content_is_not_redeployed(api):
    """Deploying the same content again → 201 (API.md), created false, the same version and hash; no new version."""
    first = deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    again = deploy(api, ADMONISHMENT, admonishment_variant(), as_="admin")
    assert again.status_code == 201, again.json
    assert (again.json["created"], again.json["version"], again.json["content_hash"]) == (False, 2,
                                                                                           first["content_hash"])
    assert again.json["deployed_by"] == "designer"
    assert [v["version"] for v in api.get(f"/api/processes/{ADMONISHMENT}").json["versions"]] == [1, 2]


def test_shipped_files_uploaded_again_are_unchanged(api):
    """The shipped accountability.bpmn with its DMN, uploaded as multipart → 201, version 1, created false."""
    files = {"accountability.bpmn": ACCOUNTABILITY_BPMN.encode(), "sanction_ladder.dmn": SANCTION_DMN}
    response = deploy_files(api, ACCOUNTABILITY, files)
    assert response.status_code == 201 and (response.json["version"], response.json["created"]) == (1, False)


def test_changed_dmn_alone_makes_a_new_version(api):
    """The same BPMN with an edited DMN table is new content: 201 version 2, whose export has the new table;
    a DMN differing only by a comment, or uploaded under another file name, is no change."""
    commented = SANCTION_DMN.replace(b"</decision>", b"<!-- edited --></decision>", 1)
    for name, table in (("sanction_ladder.dmn", commented), ("renamed.dmn", SANCTION_DMN)):
        again = deploy_files(api, ACCOUNTABILITY, {"accountability.bpmn": ACCOUNTABILITY_BPMN.encode(), name: table})
        assert again.status_code == 201, again.json
        assert (again.json["change"], again.json["version"], again.json["created"]) == ("none", 1, False)
    dmn = SANCTION_DMN.replace("情节较轻、无损失：责令公开道歉".encode(), "情节较轻且无损失：责令公开道歉".encode(), 1)
    assert dmn != SANCTION_DMN
    files = {"accountability.bpmn": ACCOUNTABILITY_BPMN.encode(), "sanction_ladder.dmn": dmn}
    assert deployed(deploy_files(api, ACCOUNTABILITY, files), 2)["change"] == "process"
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/processes/{ACCOUNTABILITY}/versions/2/export").data))
    assert archive.read("sanction_ladder.dmn") == dmn


def test_running_cases_keep_the_version_they_started_on(api, cadre):
    """After v2 adds a required field, a case begun on v1 completes without it; a new case needs it."""
    old = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant(extra_field=True)), 2)
    new = start_admonishment(api)["id"]
    assert (api.case(old)["process_version"], api.case(new)["process_version"]) == (1, 2)
    new_task = api.open_task(new, "intake_review")
    assert "urgency" in new_task["form"]["properties"]
    assert "urgency" not in api.open_task(old, "intake_review")["form"]["properties"]
    assert_error(api.complete_raw(new_task["id"], "discipline", {"form": "dismiss", "reason": "x"}), 422,
                 fields={"urgency"})
    done = api.complete(old, "intake_review", form="dismiss", reason="不予诫勉")
    assert (done["process_version"], done["outcome"]) == (1, "dismissed")
    assert api.complete(new, "intake_review", form="dismiss", reason="x", urgency="low")["outcome"] == "dismissed"


# Diff, export, XML of a version.

def test_diff_lists_added_removed_and_changed_elements(api):
    """diff?against=m lists added, removed and changed element ids between two versions."""
    changed_form = form_schema({"type": "object", "title": "改", "properties": {"n": {"type": "integer"}}})
    deployed(deploy(api, KEY, chain("a", "b")), 1)
    deployed(deploy(api, KEY, chain("b", "c")), 2)
    deployed(deploy(api, KEY, chain("a", "b", "d", forms={"b": changed_form})), 3)
    diff = api.get(f"/api/processes/{KEY}/versions/2/diff", query_string={"against": 1}).json
    assert (diff["added"], diff["removed"]) == (["c"], ["a"])
    assert "b" not in diff["changed"]
    diff = api.get(f"/api/processes/{KEY}/versions/3/diff", query_string={"against": 1}).json
    assert (diff["added"], diff["removed"], list(diff["changed"])) == (["d"], [], ["b"])
    default = api.get(f"/api/processes/{KEY}/versions/3/diff").json
    assert (default["against"], default["added"], default["removed"]) == (2, ["a", "d"], ["c"])


def test_diff_of_a_changed_script(api):
    """A version whose script differs shows that script task as changed, nothing added or removed."""
    deploy_accountability(api, SETTLE_SCRIPT + "\nsettled = True", 2)
    diff = api.get(f"/api/processes/{ACCOUNTABILITY}/versions/2/diff", query_string={"against": 1}).json
    assert (diff["added"], diff["removed"], list(diff["changed"])) == ([], [], ["settle_final_sanction"])


def test_diff_errors(api):
    """Unknown version or process → 404; v1 with no `against` → 400; a non-integer `against` → 400."""
    assert_error(api.get(f"/api/processes/{ADMONISHMENT}/versions/5/diff", query_string={"against": 1}), 404)
    assert_error(api.get(f"/api/processes/{ADMONISHMENT}/versions/1/diff", query_string={"against": 9}), 404)
    assert_error(api.get("/api/processes/nothing_here/versions/1/diff", query_string={"against": 1}), 404)
    assert_error(api.get(f"/api/processes/{ADMONISHMENT}/versions/1/diff"), 400)
    assert_error(api.get(f"/api/processes/{ADMONISHMENT}/versions/1/diff", query_string={"against": "x"}), 400)


def test_export_is_a_zip_of_the_bpmn_and_dmn_files(api):
    """export returns a zip with exactly the version's .bpmn and .dmn files, byte for byte."""
    deploy_accountability(api, SETTLE_SCRIPT + "\nsettled = True", 2)
    for version, bpmn in ((1, ACCOUNTABILITY_BPMN.encode()),
                          (2, accountability_with_script(SETTLE_SCRIPT + "\nsettled = True"))):
        response = api.get(f"/api/processes/{ACCOUNTABILITY}/versions/{version}/export", as_="org_dept")
        assert response.status_code == 200 and response.mimetype == "application/zip"
        assert f"{ACCOUNTABILITY}-v{version}.zip" in response.headers["Content-Disposition"]
        archive = zipfile.ZipFile(io.BytesIO(response.data))
        assert sorted(archive.namelist()) == ["accountability.bpmn", "sanction_ladder.dmn"]
        assert archive.read("accountability.bpmn") == bpmn
        assert archive.read("sanction_ladder.dmn") == SANCTION_DMN


def test_export_of_a_bpmn_only_version_and_unknowns(api):
    """A version without DMN exports just its .bpmn; unknown versions and processes → 404."""
    deployed(deploy(api, KEY, chain("a")), 1)
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/processes/{KEY}/versions/1/export").data))
    assert archive.namelist() == [f"{KEY}.bpmn"] and archive.read(f"{KEY}.bpmn") == chain("a")
    assert_error(api.get(f"/api/processes/{KEY}/versions/2/export"), 404)
    assert_error(api.get("/api/processes/nothing_here/versions/1/export"), 404)


# Migration.

def test_dry_run_reports_and_changes_nothing(api, cadre):
    """?dry_run=1 reports from/to versions, removed and changed elements, and leaves the case as it was."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    response = migrate(api, case_id, dry_run=True)
    assert response.status_code == 200, response.json
    report = response.json
    assert (report["from_version"], report["to_version"], report["removed"]) == (1, 2, [])
    assert report["changed"] == ["intake_review"]
    case = api.case(case_id)
    assert case["process_version"] == 1 and case["open_tasks"][0]["name"] == "受理审核"
    assert "migrate" not in actions(api, case_id)


@pytest.mark.parametrize("url", ["/api/cases/{case}/migrate?dry_run=1",
                                 f"/api/processes/{ADMONISHMENT}/migrate?dry_run=1"])
def test_a_dry_run_holds_no_case_while_it_steps_it(api, cadre, services, monkeypatch, url):
    """A dry run changes nothing, so it reads each case and locks none: a completion of the case it is stepping
    takes the case's lock meanwhile (it waited for the dry run's step: on SQLite every writer did, for the whole
    dry run as its loop took the write lock back case after case)."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    runner, migrate_in_engine, took = services.runner, services.runner.migrate, threading.Event()
    writers: list[threading.Thread] = []
    meanwhile: list[bool] = []

    def lock() -> None:
        with services.db.unit_of_work() as session:
            lock_case(session, case_id)
        took.set()

    def write_meanwhile(*args, **kwargs):
        writers.append(threading.Thread(target=lock))
        writers[-1].start()
        meanwhile.append(took.wait(3))  # taken while the dry run is at this case, or not
        return migrate_in_engine(*args, **kwargs)
    monkeypatch.setattr(runner, "migrate", write_meanwhile)
    response = api.post(url.format(case=case_id), as_="admin")
    for writer in writers:  # a writer that waited takes the lock once the dry run let it go
        writer.join(30)
    assert response.status_code == 200, response.json
    assert meanwhile == [True], "the case's lock waited for the dry run"
    assert api.case(case_id)["process_version"] == 1 and "migrate" not in actions(api, case_id)


def test_migration_refused_when_an_open_task_would_disappear(api, cadre):
    """A target version without the case's open task → 409 for the dry run and for the real migration."""
    deployed(deploy(api, KEY, chain("a", "b")), 1)
    case_id = start_sandbox(api)["id"]
    deployed(deploy(api, KEY, chain("b", "c")), 2)
    assert_error(migrate(api, case_id, dry_run=True), 409)
    assert_error(migrate(api, case_id), 409)
    case = api.case(case_id)
    assert case["process_version"] == 1 and api.open_elements(case_id) == ["a"]
    assert "migrate" not in actions(api, case_id)


def test_migration_refused_when_the_open_tasks_id_is_renamed(api, cadre):
    """A target whose open task has another element id (intake_review → intake_check) → 409, nothing moved."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, ADMONISHMENT_BPMN.replace("intake_review", "intake_check").encode()), 2)
    assert_error(migrate(api, case_id, dry_run=True), 409)
    assert_error(migrate(api, case_id), 409)
    assert api.case(case_id)["process_version"] == 1 and api.open_elements(case_id) == ["intake_review"]


def test_migration_refused_when_the_target_removes_a_step_the_case_still_holds(api, cadre):
    """A target without a step the case completed and still keeps (what its last step hangs from, for returning)
    → 409, dry run included: stored, the case would fail to load at every later step. A step it left behind
    may go."""
    deployed(deploy(api, KEY, chain("a", "b", "c", "d")), 1)
    case_id = start_sandbox(api)["id"]
    api.complete(case_id, "a", ok=True)
    deployed(deploy(api, KEY, chain("b", "c", "d")), 2)
    for dry_run in (True, False):
        refused = assert_error(migrate(api, case_id, dry_run=dry_run), 409)
        assert "removed: a " in refused["message"], refused
    assert api.case(case_id)["process_version"] == 1 and "migrate" not in actions(api, case_id)
    api.complete(case_id, "b", ok=True)
    api.complete(case_id, "c", ok=True)
    moved = migrate(api, case_id)
    assert moved.status_code == 200, moved.json
    assert api.complete(case_id, "d", ok=True)["outcome"] == "done"


def test_migration_refused_when_the_target_removes_a_task_of_a_finished_subprocess(api, cadre):
    """An embedded subprocess the case finished keeps its tasks in the case's state: a target whose subprocess
    lost one of them → 409, and the case goes on on its version."""
    deployed(deploy(api, KEY, with_subprocess("s1", "s2")), 1)
    case_id = start_sandbox(api)["id"]
    api.complete(case_id, "s1", ok=True)
    api.complete(case_id, "s2", ok=True)
    deployed(deploy(api, KEY, with_subprocess("s1")), 2)
    for dry_run in (True, False):
        assert "s2" in assert_error(migrate(api, case_id, dry_run=dry_run), 409)["message"]
    assert api.complete(case_id, "b", ok=True)["outcome"] == "done"


def test_a_case_inside_an_embedded_subprocess_migrates_with_it(api, cadre):
    """A case whose open task lies inside an embedded subprocess moves (it was refused as if that task would
    disappear): the task keeps its id and holder and takes the new name, and the step the target adds runs."""
    deployed(deploy(api, KEY, with_subprocess("s1", "s2")), 1)
    case_id = start_sandbox(api)["id"]
    task = api.open_task(case_id, "s1")
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="org_dept").status_code == 200
    renamed = with_subprocess("s1", "s3", "s2").replace('name="任务"'.encode(), 'name="核实"'.encode())
    deployed(deploy(api, KEY, renamed), 2)
    assert migrate(api, case_id, dry_run=True).status_code == 200
    moved = migrate(api, case_id)
    assert moved.status_code == 200, moved.json
    after = api.open_task(case_id, "s1")
    assert (after["id"], after["assignee"], after["name"]) == (task["id"], "org_dept", "核实")
    for element in ("s1", "s3", "s2"):
        assert api.open_elements(case_id) == [element]
        api.complete(case_id, element, ok=True)
    assert api.complete(case_id, "b", ok=True)["outcome"] == "done"


def with_subprocess(*inner):
    """start → embedded subprocess `sub` (its user tasks `inner`) → user task `b` → end_done, all org_dept."""
    flows = "".join(f'<bpmn:sequenceFlow id="sf_{a}" sourceRef="{a}" targetRef="{b}"/>'
                    for a, b in zip(["s_start", *inner], [*inner, "s_end"], strict=True))
    body = ('<bpmn:startEvent id="start"/><bpmn:subProcess id="sub" name="子流程"><bpmn:startEvent id="s_start"/>'
            + "".join(user_task(i, form_schema()) for i in inner) + f'<bpmn:endEvent id="s_end"/>{flows}'
            "</bpmn:subProcess>" + user_task("b", form_schema())
            + '<bpmn:endEvent id="end_done"><bpmn:terminateEventDefinition id="term"/></bpmn:endEvent>'
            '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sub"/>'
            '<bpmn:sequenceFlow id="f2" sourceRef="sub" targetRef="b"/>'
            '<bpmn:sequenceFlow id="f3" sourceRef="b" targetRef="end_done"/>')
    return document(body, {"org_dept": [*inner, "sub", "b"]})


def test_migrated_case_runs_on_the_new_version_and_is_in_history(api, cadre):
    """A migrated case moves to the newest version (no body), is recorded as `migrate`, and runs v2's new task."""
    deployed(deploy(api, KEY, chain("a", "b")), 1)
    case_id = start_sandbox(api)["id"]
    deployed(deploy(api, KEY, chain("a", "b", "c")), 2)
    response = migrate(api, case_id)
    assert response.status_code == 200, response.json
    assert (response.json["from_version"], response.json["to_version"]) == (1, 2)
    entry = [e for e in api.history(case_id) if e["action"] == "migrate"]
    assert len(entry) == 1 and entry[0]["actor"] == "admin"
    assert (entry[0]["detail"]["from_version"], entry[0]["detail"]["to_version"]) == (1, 2)
    assert api.case(case_id)["process_version"] == 2
    api.complete(case_id, "a", ok=True)
    api.complete(case_id, "b", ok=True)
    case = api.complete(case_id, "c", ok=True)
    assert (case["status"], case["outcome"], case["process_version"]) == ("completed", "done", 2)


def test_a_migrated_case_keeps_its_claims_and_deadlines_an_extended_one_too(api, cadre):
    """Moving to a new version neither restarts a deadline from the migration nor undoes an extension: the
    engine's timer, the task's due date and its holder stay as they were."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    task = api.open_task(case_id, "record_inquiry_reply")
    assert api.case(case_id)["next_timer_due"] == task["due_at"] is not None
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="discipline").status_code == 200
    extended = api.post(f"/api/tasks/{task['id']}/extend", as_="discipline_head",
                        json={"until": "2099-01-01", "reason": "材料需补充"})
    assert extended.status_code == 200, extended.json
    due = extended.json["due_at"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant("二")), 2)
    moved = migrate(api, case_id)
    assert moved.status_code == 200, moved.json
    assert moved.json["case"]["next_timer_due"] == due
    after = api.open_task(case_id, "record_inquiry_reply")
    assert (after["id"], after["assignee"], after["due_at"]) == (task["id"], "discipline", due)


def test_a_holder_without_the_role_of_the_lane_a_migration_moves_the_task_to_gives_it_back(api, cadre):
    """v2 moves the open task from the org_dept lane to org_head's: org_dept, who had claimed it, no longer holds
    it (recorded) and may not complete it; an org_head holder would have kept it."""
    deployed(deploy(api, KEY, chain_process([("a", form_schema())], {"org_dept": ["a"]})), 1)
    case_id = start_sandbox(api)["id"]
    task = api.open_task(case_id, "a")
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="org_dept").status_code == 200
    deployed(deploy(api, KEY, chain_process([("a", form_schema())], {"org_head": ["a"]})), 2)
    assert migrate(api, case_id).status_code == 200
    after = api.open_task(case_id, "a")
    assert (after["id"], after["role"], after["assignee"]) == (task["id"], "org_head", None)
    released = [e for e in api.history(case_id) if e["action"] == "unclaim"]
    assert [(e["actor"], e["detail"]["from"]) for e in released] == [("system", "org_dept")]
    assert_error(api.complete_raw(task["id"], "org_dept", {"ok": True}), {403, 404})
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="org_head").status_code == 200
    assert api.complete_raw(task["id"], "org_head", {"ok": True}).status_code == 200


def test_migrating_one_case_leaves_the_others_on_their_version(api, cadre):
    """Two cases on v1, v2 deployed, one migrated: it runs v2's extra task, the other finishes on v1."""
    deployed(deploy(api, KEY, chain("a")), 1)
    moved, stayed = start_sandbox(api)["id"], start_sandbox(api)["id"]
    deployed(deploy(api, KEY, chain("a", "extra")), 2)
    assert migrate(api, moved, to_version=2).status_code == 200
    assert (api.case(moved)["process_version"], api.case(stayed)["process_version"]) == (2, 1)
    assert api.complete(stayed, "a", ok=True)["outcome"] == "done"
    assert api.complete(moved, "a", ok=True)["status"] == "open"
    assert api.complete(moved, "extra", ok=False)["outcome"] == "done"
    assert "migrate" not in actions(api, stayed)


def test_migration_to_an_explicit_version_and_back(api, cadre):
    """{"to_version": n} picks the target; migrating back to 1 works; the same version again → 409."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant("二")), 2)
    deployed(deploy(api, ADMONISHMENT, admonishment_variant("三")), 3)
    assert migrate(api, case_id, to_version=2).json["to_version"] == 2
    assert_error(migrate(api, case_id, to_version=2), 409)
    back = migrate(api, case_id, to_version=1)
    assert back.status_code == 200 and (back.json["from_version"], back.json["to_version"]) == (2, 1)
    assert api.case(case_id)["process_version"] == 1


def test_migration_409_when_already_on_newest(api, cadre):
    """A case already on the newest version → 409 (default target) and nothing recorded."""
    case_id = start_admonishment(api)["id"]
    assert_error(migrate(api, case_id), 409)
    assert_error(migrate(api, case_id, dry_run=True), 409)
    assert_error(migrate(api, case_id, to_version=1), 409)
    assert "migrate" not in actions(api, case_id)


@pytest.mark.parametrize("user", ["designer", "org_dept", "discipline", "committee"])
def test_migration_is_for_admins_only(api, cadre, user):
    """Non-admins get 403 (dry run included) and the case stays on its version."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    assert_error(migrate(api, case_id, as_=user), 403)
    assert_error(migrate(api, case_id, as_=user, dry_run=True), 403)
    assert api.case(case_id)["process_version"] == 1


def test_migration_errors(api, cadre):
    """Unknown case or version → 404; to_version not an integer → 422; a closed case → 409."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant()), 2)
    assert_error(migrate(api, 424242), 404)
    assert_error(migrate(api, case_id, to_version=7), 404)
    for bad in ("2", True, 2.5, [2]):
        assert_error(migrate(api, case_id, to_version=bad), 422, fields={"to_version"})
    closed = start_admonishment(api)["id"]
    assert api.post(f"/api/cases/{closed}/cancel", json={"reason": "重复"}).status_code == 200
    assert_error(migrate(api, closed, to_version=1), 409)
    assert api.case(case_id)["process_version"] == 1


def test_after_migration_open_task_shows_the_new_versions_form_and_name(api, cadre):
    """After migrating, the open task shows the target version's name and form, and completes by it."""
    case_id = start_admonishment(api)["id"]
    deployed(deploy(api, ADMONISHMENT, admonishment_variant("受理审核（新）", extra_field=True)), 2)
    assert migrate(api, case_id).status_code == 200
    task = api.open_task(case_id, "intake_review")
    assert task["name"] == "受理审核（新）"
    assert "urgency" in task["form"]["properties"]
    assert "urgency" in api.get(f"/api/tasks/{task['id']}").json["form"]["properties"]
    assert "urgency" in api.inbox("discipline", case_id=case_id)[0]["form"]["properties"]
    case = api.complete(case_id, "intake_review", form="dismiss", reason="x", urgency="high")
    assert case["outcome"] == "dismissed"


# Incidents.

def test_broken_script_incident_then_fix_migrate_retry_and_finish(api, cadre):
    """A failing script leaves the case in incident at its element; fixed v3 + migrate + retry → sanctioned."""
    deploy_accountability(api, "final_sanction = undefined_name", 2)
    case_id = accountability_to_review(api, "minor", "none")
    assert api.case(case_id)["process_version"] == 2
    task = api.open_task(case_id, "committee_review")
    response = api.post(f"/api/tasks/{task['id']}/complete", as_="committee", json={"data": {"decision": "approve"}})
    assert response.status_code in (200, 409), response.json
    case = api.case(case_id)
    assert case["status"] == "incident" and case["outcome"] is None
    incident = case["incident"]
    assert incident["element_id"] == "settle_final_sanction"
    assert isinstance(incident["line"], int) and "undefined_name" in incident["message"]
    assert case["data"]["decision"] == "approve" and case["data"]["proposed_sanction"] == "public_apology"
    listed = api.get("/api/cases", query_string={"status": "incident"}).json
    assert [c["id"] for c in listed["items"]] == [case_id] and listed["total"] == 1
    assert "incident" in actions(api, case_id)
    assert api.cadre()["sanctions"] == []

    deploy_accountability(api, SETTLE_SCRIPT + "\nsettled = True", 3)
    dry = migrate(api, case_id, dry_run=True).json
    assert (dry["from_version"], dry["to_version"]) == (2, 3) and "settle_final_sanction" in dry["changed"]
    assert migrate(api, case_id).status_code == 200
    assert api.case(case_id)["status"] == "incident"
    retried = api.post(f"/api/cases/{case_id}/retry", as_="admin")
    assert retried.status_code == 200, retried.json
    case = api.case(case_id)
    assert (case["status"], case["outcome"], case["process_version"]) == ("completed", "sanctioned", 3)
    assert case["data"]["final_sanction"] == "public_apology" and not case.get("incident")
    assert [(s["sanction"], s["case_id"]) for s in api.cadre()["sanctions"]] == [("public_apology", case_id)]
    history = actions(api, case_id)
    assert history.index("incident") < history.index("migrate") < history.index("retry") < history.index("end")
    assert api.get("/api/cases", query_string={"status": "incident"}).json["total"] == 0


def parallel_incident_process(script):
    """start → prepare → fork → (review | bad_script) → join → end_done; both user tasks org_dept."""
    body = (
        '    <bpmn:startEvent id="start"/>\n'
        f'    <bpmn:userTask id="prepare" name="准备"><bpmn:extensionElements>{form_schema()}'
        "</bpmn:extensionElements></bpmn:userTask>\n"
        '    <bpmn:parallelGateway id="fork"/>\n'
        f'    <bpmn:userTask id="review" name="审核"><bpmn:extensionElements>{form_schema()}'
        "</bpmn:extensionElements></bpmn:userTask>\n"
        f'    <bpmn:scriptTask id="bad_script" name="脚本"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>\n'
        '    <bpmn:parallelGateway id="join"/>\n'
        '    <bpmn:endEvent id="end_done"><bpmn:terminateEventDefinition id="term"/></bpmn:endEvent>\n'
        + "".join(f'    <bpmn:sequenceFlow id="f_{a}_{b}" sourceRef="{a}" targetRef="{b}"/>\n' for a, b in [
            ("start", "prepare"), ("prepare", "fork"), ("fork", "review"), ("fork", "bad_script"),
            ("review", "join"), ("bad_script", "join"), ("join", "end_done")])
    )
    return document(body, {"org_dept": ["prepare", "review"]})


def test_tasks_of_a_case_in_incident_cannot_be_completed(api, cadre):
    """While in incident, the case's open task → 409 on completion; after fix, migrate and retry it finishes."""
    deployed(deploy(api, KEY, parallel_incident_process("y = 1 / 0")), 1)
    case_id = start_sandbox(api)["id"]
    api.complete(case_id, "prepare", ok=True)
    case = api.case(case_id)
    assert case["status"] == "incident" and case["incident"]["element_id"] == "bad_script"
    assert [t["element_id"] for t in case["open_tasks"]] == ["review"]
    review = case["open_tasks"][0]
    assert_error(api.complete_raw(review["id"], "org_dept", {"ok": True}), 409)
    assert api.case(case_id)["status"] == "incident"
    deployed(deploy(api, KEY, parallel_incident_process("y = 1 / 1")), 2)
    assert migrate(api, case_id).status_code == 200
    assert api.post(f"/api/cases/{case_id}/retry", as_="admin").json["status"] == "open"
    case = api.complete(case_id, "review", ok=True)
    assert (case["status"], case["outcome"]) == ("completed", "done")


def test_retry_permissions_and_state(api, cadre):
    """retry: org_dept/discipline → 403; designer (reads no case) → 404 like an unknown case; healthy → 409."""
    deployed(deploy(api, KEY, parallel_incident_process("y = 1 / 0")), 1)
    case_id = start_sandbox(api)["id"]
    api.complete(case_id, "prepare", ok=True)
    for user in ("org_dept", "discipline"):
        assert_error(api.post(f"/api/cases/{case_id}/retry", as_=user), 403)
    assert_error(api.post(f"/api/cases/{case_id}/retry", as_="designer"), 404)
    still_broken = api.post(f"/api/cases/{case_id}/retry", as_="admin")
    assert still_broken.status_code in (200, 409)
    assert api.case(case_id)["status"] == "incident"
    healthy = start_admonishment(api)["id"]
    assert_error(api.post(f"/api/cases/{healthy}/retry", as_="admin"), 409)
    assert_error(api.post(f"/api/cases/{healthy}/retry", as_="designer"), 404)
    assert_error(api.post("/api/cases/424242/retry", as_="designer"), 404)


def test_dmn_failure_is_an_incident_and_retry_after_fix(api, cadre):
    """A DMN input that fails at run time → incident at the rule task; fixed DMN v3 + migrate + retry → grade_review."""
    dmn = (BPMN_DIR / "assessment_grade.dmn").read_bytes()
    bpmn = (BPMN_DIR / "annual_assessment.bpmn").read_bytes()
    broken = dmn.replace(b"<text>votes_incompetent * 3", b"<text>votes_missing * 3")
    assert broken != dmn
    deployed(deploy_files(api, "annual_assessment", {"a.bpmn": bpmn, "assessment_grade.dmn": broken}), 2)
    case_id = api.start("annual_assessment", "c1", as_="org_dept", year=2025)["id"]
    api.complete(case_id, "democratic_assessment", votes_excellent=5, votes_competent=5, votes_basic=0,
                 votes_incompetent=0, performance_summary="良好")
    case = api.case(case_id)
    assert case["status"] == "incident" and case["incident"]["element_id"] == "grade_rule"
    assert api.cadre()["assessments"] == []
    fixed = dmn.replace(b"<text>votes_incompetent * 3", b"<text>3 * votes_incompetent", 1)  # v1's table is v1
    deployed(deploy_files(api, "annual_assessment", {"a.bpmn": bpmn, "assessment_grade.dmn": fixed}), 3)
    assert migrate(api, case_id).status_code == 200
    assert api.post(f"/api/cases/{case_id}/retry", as_="admin").status_code == 200
    case = api.case(case_id)
    assert case["status"] == "open" and [t["element_id"] for t in case["open_tasks"]] == ["grade_review"]


def test_service_task_failure_is_an_incident_without_side_effects(api):
    """A service task whose parameter fails at run time → incident at it, no child case; fixed + migrate + retry
    → child. (A service task naming an unknown operation never deploys: see test_designer_hostile.)"""
    api.create_cadre("c1", post_level="leading")
    rotation = (BPMN_DIR / "rotation_review.bpmn").read_text(encoding="utf-8")
    broken = rotation.replace('value="&quot;rotation&quot;"', 'value="no_such_field"')
    assert broken != rotation
    deployed(deploy(api, "rotation_review", broken.encode()), 2)
    case_id = api.start("rotation_review", "c1", as_="org_dept", rule="mandatory", years_in_post=12,
                        post_level="leading")["id"]
    api.complete(case_id, "rotation_plan", decision="rotate", reason="到期轮岗")
    case = api.case(case_id)
    assert case["status"] == "incident" and case["incident"]["element_id"] == "start_departure"
    assert case["child_case_ids"] == []
    fixed = rotation.replace("<bpmn:documentation>轮岗交流：", "<bpmn:documentation>轮岗交流（修订）：", 1)
    assert fixed != rotation
    deployed(deploy(api, "rotation_review", fixed.encode()), 3)
    assert migrate(api, case_id).status_code == 200
    assert api.post(f"/api/cases/{case_id}/retry", as_="admin").status_code == 200
    case = api.case(case_id)
    assert (case["status"], case["outcome"]) == ("completed", "rotating")
    assert len(case["child_case_ids"]) == 1
    assert api.case(case["child_case_ids"][0])["data"]["departure_reason"] == "rotation"
