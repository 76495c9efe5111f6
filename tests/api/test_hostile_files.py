"""Files that leave or enter the service: CSV cells never run as formulas, DMN file names never leave their folder."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from service.config import PROJECT_ROOT
from service.usecases import processes, tracker, versions
from tests.api.support import assert_error
from tests.conftest import actor

BPMN_DIR = PROJECT_ROOT / "bpmn"
ASSESSMENT = "annual_assessment"
FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(1)", "\t=1+1", "\r=1+1", "\n=1+1", " =1+1", "'=1+1", '"=1+1',
            "\t", "＝1+1"]


def exported_names(services) -> list[str]:
    rows = csv.DictReader(io.StringIO(tracker.cases_csv(services, actor("discipline"), {}).lstrip("\ufeff")))
    return [row["干部姓名"] for row in rows]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(api, services):
    """Names starting with = + - @ TAB CR LF (also after spaces or quotes) get a leading apostrophe; others stay."""
    for index, name in enumerate([*FORMULAS, "张三", "O'Brien"]):
        api.create_cadre(f"f{index}", name=name)
        api.start("accountability", f"f{index}", as_="discipline", source="web", category="other", allegation="x")
    names = exported_names(services)
    assert sorted(names) == sorted(["'" + name for name in FORMULAS] + ["张三", "O'Brien"])


def upload(api, files: dict[str, bytes], key: str = ASSESSMENT):
    data = {f"file{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate(files.items())}
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=data, content_type="multipart/form-data")


def assessment_files(dmn_name: str) -> dict[str, bytes]:
    bpmn = (BPMN_DIR / "annual_assessment.bpmn").read_text(encoding="utf-8").replace("年度考核", "年度考核（新）")
    return {"annual_assessment.bpmn": bpmn.encode(), dmn_name: (BPMN_DIR / "assessment_grade.dmn").read_bytes()}


@pytest.mark.parametrize("uploaded", ["../../assessment_grade.dmn", "/etc/assessment_grade.dmn",
                                      "a/b/../assessment_grade.dmn"])
def test_a_dmn_path_is_reduced_to_its_base_name(api, uploaded):
    """An uploaded DMN named with folders is stored and exported under its base name only."""
    response = upload(api, assessment_files(uploaded))
    assert response.status_code == 201, response.json
    exported = api.get(f"/api/processes/{ASSESSMENT}/versions/{response.json['version']}/export")
    names = zipfile.ZipFile(io.BytesIO(exported.get_data())).namelist()
    assert sorted(names) == ["annual_assessment.bpmn", "assessment_grade.dmn"]


@pytest.mark.parametrize("uploaded", ["bad name.dmn", ".dmn", "../.dmn", "grade;rm.dmn", "等级.dmn", "x.dmn\x00.dmn",
                                      "-x.dmn", ".hidden.dmn", "x" * 120 + ".dmn"])
def test_unsafe_dmn_names_are_refused_with_422(api, uploaded):
    """Names with other characters, hidden or empty names: 422 naming the dmn field; nothing deployed."""
    error = assert_error(upload(api, assessment_files(uploaded)), 422)
    assert "dmn" in error["fields"]
    assert [v["version"] for v in api.get(f"/api/processes/{ASSESSMENT}").json["versions"]] == [1]


@pytest.mark.parametrize("uploaded", ["..\\..\\assessment_grade.dmn", "C:\\x\\assessment_grade.dmn",
                                      "../..\\assessment_grade.dmn"])
def test_windows_paths_are_reduced_too(services, uploaded):
    """Backslash folders (which multipart parsing may already have eaten) are cut off in the use case as well."""
    files = assessment_files(uploaded)
    version, created = processes.deploy_version(services, actor("designer"), ASSESSMENT,
                                                files.pop("annual_assessment.bpmn"), files)
    assert created
    name, content = versions.export_version(services, actor("designer"), ASSESSMENT, version["version"])
    assert name == f"{ASSESSMENT}-v2.zip"
    assert "assessment_grade.dmn" in zipfile.ZipFile(io.BytesIO(content)).namelist()


def test_two_uploads_with_one_base_name_are_refused(api):
    """`a/grade.dmn` and `b/grade.dmn` would overwrite each other: 422."""
    files = {**assessment_files("a/assessment_grade.dmn"),
             "b/assessment_grade.dmn": (BPMN_DIR / "assessment_grade.dmn").read_bytes()}
    assert_error(upload(api, files), 422)


def test_the_export_renames_unsafe_names_already_stored(api, app):
    """A version stored before the rule with `../../x.dmn` exports it under a safe name inside the zip."""
    from sqlalchemy import update

    from service.db.models import ProcessVersion

    services = app.extensions["cadreflow"]
    grade = (BPMN_DIR / "assessment_grade.dmn").read_text(encoding="utf-8")
    with services.db.unit_of_work() as session:
        session.execute(update(ProcessVersion).where(ProcessVersion.process_key == ASSESSMENT)
                        .values(dmn_files={"../../x.dmn": grade, "..\\evil.dmn": grade, "ok.dmn": grade}))
    exported = api.get(f"/api/processes/{ASSESSMENT}/versions/1/export")
    names = zipfile.ZipFile(io.BytesIO(exported.get_data())).namelist()
    assert sorted(names) == ["annual_assessment.bpmn", "evil.dmn", "ok.dmn", "x.dmn"]
    assert all("/" not in name and "\\" not in name and not name.startswith(".") for name in names)


def test_a_diagram_declaring_another_encoding_than_utf8_is_refused_at_deploy(api):
    """Read as ISO-8859-1, its Chinese names and texts would run as other texts than the modeler shows."""
    text = (BPMN_DIR / f"{ASSESSMENT}.bpmn").read_text(encoding="utf-8")
    assert text.startswith("<?xml version='1.0' encoding='UTF-8'?>")
    latin = text.replace("encoding='UTF-8'", "encoding='ISO-8859-1'", 1).encode()
    response = api.post(f"/api/processes/{ASSESSMENT}/versions", as_="designer", data=latin,
                        content_type="application/xml")
    body = assert_error(response, 422)
    assert any("ISO-8859-1" in problem["message"] for problem in body["errors"]), body
