"""Attachments in an S3-compatible store: a real HTTP server (moto's) started by the test, the app pointed
at it by settings (ATTACHMENT_STORE = "s3://bucket/prefix", S3_ENDPOINT_URL, S3_REGION) and credentials
from the standard AWS environment, driven through the API."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.api.support import app_from_template, assert_error, make_api, start_accountability
from tests.net import free_port

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
BUCKET, PREFIX, REGION = "cadreflow-files", "cases/attachments", "us-east-1"


@pytest.fixture
def s3_server(monkeypatch) -> Iterator[dict]:
    """A moto S3 server on 127.0.0.1 and a free port, with the bucket made; credentials only in the env."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                        "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1",
                        "no_proxy": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets in this process: start each test from an empty server.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    # Versioned, so a second PUT of the same key would show as a second version.
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    state = {"server": server, "endpoint": endpoint, "client": client, "running": True}
    try:
        yield state
    finally:
        if state["running"]:
            server.stop()


@pytest.fixture
def s3_api(s3_server, template, tmp_path):
    app = app_from_template(template, tmp_path / "s3", ATTACHMENT_STORE=f"s3://{BUCKET}/{PREFIX}",
                            S3_ENDPOINT_URL=s3_server["endpoint"], S3_REGION=REGION)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        yield api
    finally:
        app.extensions["cadreflow"].db.dispose()


def upload(api, case_id, content, name="材料.pdf", as_="discipline"):
    return api.post(f"/api/cases/{case_id}/attachments", as_=as_,
                    data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_an_upload_lands_under_its_sha256_and_comes_back(s3_api, s3_server):
    """Upload: one object at <prefix>/<sha[:2]>/<sha>; download gives the same bytes; the same bytes again
    add a row but no object; a reader outside the case's read policy gets 404."""
    client = s3_server["client"]
    case_id = start_accountability(s3_api)["id"]
    digest = hashlib.sha256(PDF).hexdigest()
    first = upload(s3_api, case_id, PDF)
    assert first.status_code == 201, first.json
    assert first.json["sha256"] == digest
    key = f"{PREFIX}/{digest[:2]}/{digest}"
    assert keys(client) == [key]
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == PDF
    download = s3_api.get(f"/api/attachments/{first.json['id']}", as_="discipline_head")
    assert download.status_code == 200 and download.data == PDF and download.mimetype == "application/pdf"

    second = upload(s3_api, case_id, PDF, "again.pdf")
    assert second.status_code == 201, second.json
    assert second.json["sha256"] == digest and second.json["id"] != first.json["id"]
    assert keys(client) == [key]  # stored once
    versions = client.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert [v["Key"] for v in versions] == [key]  # not even written again: the HEAD found it

    other = "谈话记录：情况属实。\n".encode()
    assert upload(s3_api, case_id, other, "notes.txt").status_code == 201
    assert len(keys(client)) == 2

    for outsider in ("audit", "org_dept", "designer"):
        assert_error(s3_api.get(f"/api/attachments/{first.json['id']}", as_=outsider), 404)
        assert_error(s3_api.get(f"/api/cases/{case_id}/attachments", as_=outsider), 404)
        assert_error(upload(s3_api, case_id, b"%PDF-1.4 outsider\n", as_=outsider), 404)
    assert len(keys(client)) == 2  # the refused upload sent nothing


def test_a_missing_object_is_a_404(s3_api, s3_server):
    """An attachment row whose object was removed from the bucket: 404 with a clear message, not a 500."""
    case_id = start_accountability(s3_api)["id"]
    attachment = upload(s3_api, case_id, PDF).json
    s3_server["client"].delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{attachment['sha256'][:2]}/{attachment['sha256']}")
    response = s3_api.get(f"/api/attachments/{attachment['id']}", as_="discipline")
    assert_error(response, 404)
    assert "附件文件缺失" in response.json["error"]["message"]


def test_a_tampered_object_is_not_served(s3_api, s3_server):
    """Bytes in the bucket that no longer match their key's digest are refused (503), never served."""
    case_id = start_accountability(s3_api)["id"]
    attachment = upload(s3_api, case_id, PDF).json
    key = f"{PREFIX}/{attachment['sha256'][:2]}/{attachment['sha256']}"
    s3_server["client"].put_object(Bucket=BUCKET, Key=key, Body=b"%PDF-1.4 forged\n")
    assert_error(s3_api.get(f"/api/attachments/{attachment['id']}", as_="discipline"), 503, "unavailable")


def test_a_stopped_store_answers_503_and_writes_no_row(s3_api, s3_server):
    """The store's server stopped: upload and download answer 503 (bilingual), no attachment row and no
    history entry are left; reading the case's list still works."""
    case_id = start_accountability(s3_api)["id"]
    kept = upload(s3_api, case_id, PDF).json
    s3_server["server"].stop()
    s3_server["running"] = False
    refused = upload(s3_api, case_id, "新的材料\n".encode(), "new.txt")
    assert_error(refused, 503, "unavailable")
    assert "附件存储暂时无法访问" in refused.json["error"]["message"]
    assert [a["id"] for a in s3_api.get(f"/api/cases/{case_id}/attachments").json] == [kept["id"]]
    assert [e["detail"]["attachment_id"] for e in s3_api.history(case_id) if e["action"] == "attach"] == [kept["id"]]
    assert_error(s3_api.get(f"/api/attachments/{kept['id']}", as_="discipline"), 503, "unavailable")


def test_missing_credentials_answer_503(s3_api, s3_server, monkeypatch):
    """No AWS credentials in the environment: the request cannot be signed, a clear 503, nothing written."""
    case_id = start_accountability(s3_api)["id"]
    services = s3_api.client.application.extensions["cadreflow"]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    from service.filestore import S3Store

    services.files = S3Store(BUCKET, PREFIX, endpoint_url=s3_server["endpoint"], region=REGION)
    assert_error(upload(s3_api, case_id, PDF), 503, "unavailable")
    assert s3_api.get(f"/api/cases/{case_id}/attachments").json == []
    assert keys(s3_server["client"]) == []


def test_a_missing_bucket_is_unavailable_not_missing(s3_server, template, tmp_path):
    """A store pointed at a bucket that does not exist: uploads answer 503 (a setup problem, not the
    client's), nothing is recorded."""
    app = app_from_template(template, tmp_path / "nobucket", ATTACHMENT_STORE="s3://no-such-bucket/cases",
                            S3_ENDPOINT_URL=s3_server["endpoint"], S3_REGION=REGION)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        case_id = start_accountability(api)["id"]
        assert_error(upload(api, case_id, PDF), 503, "unavailable")
        assert api.get(f"/api/cases/{case_id}/attachments").json == []
        assert "attach" not in [e["action"] for e in api.history(case_id)]
    finally:
        app.extensions["cadreflow"].db.dispose()
