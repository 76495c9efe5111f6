"""Attachments and comments on a case: upload, type sniffing, size limit, download under the read policy."""

from __future__ import annotations

import hashlib
import io
import zipfile
from urllib.parse import quote

from sqlalchemy import update
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from service.db.models import Attachment
from tests.api.support import app_from_template, assert_error, make_api, start_accountability

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 17


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def upload(api, case_id, content, name="材料.pdf", as_="discipline"):
    return api.post(f"/api/cases/{case_id}/attachments", as_=as_,
                    data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


class TestAttachments:
    def test_a_signed_in_reader_uploads_past_the_public_body_limit(self, api, cadre):
        """Strangers may send at most PUBLIC_MAX_BODY (1 MB) anywhere; a signed-in reader of the case sends a
        3 MB attachment (under MAX_ATTACHMENT_BYTES) through the same body checks."""
        case_id = start_accountability(api)["id"]
        large = PDF + b" " * 3_000_000
        # Encoded here: the test client would spool a body this large to a file it never closes.
        boundary, body = encode_multipart(MultiDict({"file": FileStorage(io.BytesIO(large), "材料.pdf")}))
        response = api.post(f"/api/cases/{case_id}/attachments", as_="discipline", data=body,
                            content_type=f"multipart/form-data; boundary={boundary}")
        assert response.status_code == 201, response.json
        assert response.json["size"] == len(large)

    def test_an_upload_is_stored_listed_downloaded_and_recorded(self, api, cadre):
        """A PDF: 201 with its fields; listed; the same bytes come back as a download; the history says so."""
        case_id = start_accountability(api)["id"]
        response = upload(api, case_id, PDF)
        assert response.status_code == 201, response.json
        body = response.json
        assert {k: body[k] for k in ("filename", "size", "sha256", "uploaded_by")} == {
            "filename": "材料.pdf", "size": len(PDF), "sha256": hashlib.sha256(PDF).hexdigest(),
            "uploaded_by": "discipline"}
        assert body["content_type"] == "application/pdf" and body["at"] and body["id"]
        assert [a["id"] for a in api.get(f"/api/cases/{case_id}/attachments", as_="committee").json] == [body["id"]]
        download = api.get(f"/api/attachments/{body['id']}", as_="discipline_head")
        assert download.status_code == 200 and download.data == PDF
        assert download.mimetype == "application/pdf"
        disposition = download.headers["Content-Disposition"]
        assert disposition == "attachment; filename=\"attachment.pdf\"; filename*=UTF-8''%E6%9D%90%E6%96%99.pdf"
        disposition.encode("latin-1")  # a real server (waitress) sends only Latin-1 headers
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        attach = [e for e in api.history(case_id) if e["action"] == "attach"]
        assert [(e["actor"], e["detail"]["attachment_id"], e["detail"]["sha256"]) for e in attach] == [
            ("discipline", body["id"], body["sha256"])]

    def test_the_type_is_read_from_the_content_not_the_name(self, api, cadre):
        """Images, Office documents and UTF-8 text pass whatever they are called; an executable named .pdf,
        a plain zip and binary junk are refused (422)."""
        case_id = start_accountability(api)["id"]
        for content, name, kind in [(PNG, "photo.pdf", "image/png"), (docx(), "report.bin",
                                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                                    ("谈话记录：情况属实。\n".encode(), "notes.txt", "text/plain; charset=utf-8")]:
            response = upload(api, case_id, content, name)
            assert response.status_code == 201, response.json
            assert response.json["content_type"] == kind
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as archive:
            archive.writestr("a.txt", "x")
        for junk in (b"\x7fELF\x02\x01\x01" + b"\x00" * 60, zipped.getvalue(), b"\x00\x01\x02\xff" * 10):
            assert_error(upload(api, case_id, junk, "scan.pdf"), 422, fields={"file"})

    def test_empty_missing_and_oversized_files_are_refused(self, template, tmp_path, cadre):
        """Empty or no file: 422; over MAX_ATTACHMENT_BYTES: 413; nothing is recorded."""
        app = app_from_template(template, tmp_path / "small", MAX_ATTACHMENT_BYTES=100)
        try:
            api = make_api(app, template)
            api.create_cadre("c1")
            case_id = start_accountability(api)["id"]
            assert_error(upload(api, case_id, b""), 422, fields={"file"})
            missing = api.post(f"/api/cases/{case_id}/attachments", as_="discipline", data={},
                               content_type="multipart/form-data")
            assert_error(missing, 422, fields={"file"})
            assert_error(upload(api, case_id, PDF + b" " * 100), 413)
            assert api.get(f"/api/cases/{case_id}/attachments").json == []
            assert "attach" not in [e["action"] for e in api.history(case_id)]
        finally:
            app.extensions["cadreflow"].db.dispose()

    def test_what_a_case_holds_and_a_user_adds_in_a_day_is_bounded(self, template, tmp_path, cadre):
        """Nothing attached is deleted, so one reader must not fill the disk: past MAX_CASE_ATTACHMENT_BYTES on one
        case 413, past MAX_DAILY_UPLOAD_BYTES of one user's uploads in 24 hours 429 with Retry-After; another
        user still uploads, and a refused upload leaves no row and no history entry."""
        app = app_from_template(template, tmp_path / "quota", MAX_CASE_ATTACHMENT_BYTES=3 * len(PDF),
                                MAX_DAILY_UPLOAD_BYTES=5 * len(PDF))
        try:
            api = make_api(app, template)
            api.create_cadre("c1")
            first, second = start_accountability(api)["id"], start_accountability(api)["id"]
            for _ in range(3):
                assert upload(api, first, PDF).status_code == 201
            assert_error(upload(api, first, PDF), 413)
            assert upload(api, second, PDF).status_code == 201
            assert upload(api, second, PDF).status_code == 201
            refused = upload(api, second, PDF)
            assert_error(refused, 429)
            assert 0 < int(refused.headers["Retry-After"]) <= 24 * 3600 + 1
            assert upload(api, second, PDF, as_="discipline2").status_code == 201
            assert len(api.get(f"/api/cases/{first}/attachments").json) == 3
            assert len(api.get(f"/api/cases/{second}/attachments").json) == 3
            assert [e["action"] for e in api.history(second)].count("attach") == 3
        finally:
            app.extensions["cadreflow"].db.dispose()

    def test_how_many_files_a_case_holds_is_bounded(self, template, tmp_path, cadre):
        """Audit finding: the byte quotas let one reader add a million one-byte files to a case, each a row and a
        history entry no one may ever delete, until the case page and its history were that list. A case holds at
        most MAX_CASE_ATTACHMENTS files (413 past it, nothing written); other cases still take theirs."""
        app = app_from_template(template, tmp_path / "count", MAX_CASE_ATTACHMENTS=3)
        try:
            api = make_api(app, template)
            api.create_cadre("c1")
            first, second = start_accountability(api)["id"], start_accountability(api)["id"]
            for n in range(3):
                assert upload(api, first, f"{n}".encode(), "n.txt").status_code == 201
            refused = upload(api, first, b"3", "n.txt")
            assert_error(refused, 413)
            assert "3" in refused.json["error"]["message"]
            assert len(api.get(f"/api/cases/{first}/attachments").json) == 3
            assert [e["action"] for e in api.history(first)].count("attach") == 3
            assert upload(api, second, b"x", "n.txt").status_code == 201
        finally:
            app.extensions["cadreflow"].db.dispose()

    def test_who_may_not_read_the_case_gets_404_for_its_files(self, api, cadre):
        """An outsider role (audit owns no lane of accountability), a designer: 404 to download, list or upload."""
        case_id = start_accountability(api)["id"]
        attachment = upload(api, case_id, PDF).json
        for outsider in ("audit", "org_dept", "designer"):
            assert_error(api.get(f"/api/attachments/{attachment['id']}", as_=outsider), 404)
            assert_error(api.get(f"/api/cases/{case_id}/attachments", as_=outsider), 404)
            assert_error(upload(api, case_id, PDF, as_=outsider), 404)
        assert_error(api.get("/api/attachments/999999"), 404)
        assert_error(api.get(f"/api/attachments/{attachment['id']}", as_="norole"), 404)  # no role: as unknown

    def test_same_bytes_are_stored_once_and_names_lose_their_path(self, api, app, cadre):
        """Content-addressed: two uploads of one file share one stored file; a path in the name is dropped."""
        case_id = start_accountability(api)["id"]
        first = upload(api, case_id, PDF, "../../etc/passwd.pdf").json
        second = upload(api, case_id, PDF, "dir/sub/a:b.pdf").json
        assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
        assert first["filename"] == "passwd.pdf" and second["filename"] == "a_b.pdf"
        root = app.extensions["cadreflow"].files.root
        assert [p.name for p in root.rglob("*") if p.is_file()] == [first["sha256"]]

    def test_a_name_is_offered_with_the_extension_of_what_the_file_is(self, api, cadre):
        """The type comes from the bytes; the name follows it, so text uploaded as a script, a page or a drawing is
        saved as text by whoever downloads it, and invisible characters cannot hide the real extension."""
        case_id = start_accountability(api)["id"]
        script = b"@echo off\r\ncalc.exe\r\n"
        for content, name, offered in [(script, "材料.bat", "材料.bat.txt"), (b"<html><script>x</script>", "a.html",
                                                                        "a.html.txt"),
                                       (b"<svg onload=alert(1)>", "pic.svg", "pic.svg.txt"),
                                       (b"x", "report.pdf.vbs", "report.pdf.vbs.txt"),
                                       (PDF, "evil\u202egpj.exe", "evil_gpj.exe.pdf"),
                                       (PDF, "a\x85b\u2028c.PDF", "a_b_c.PDF"), (b"notes", "notes.txt", "notes.txt"),
                                       (PNG, "photo.jpg", "photo.jpg.png")]:
            response = upload(api, case_id, content, name)
            assert response.status_code == 201, response.json
            assert response.json["filename"] == offered
            download = api.get(f"/api/attachments/{response.json['id']}", as_="discipline")
            assert download.headers["Content-Disposition"].endswith(quote(offered, safe=""))
            if offered == "notes.txt":  # the stored type names its charset once
                assert download.headers["Content-Type"] == "text/plain; charset=utf-8"

    def test_a_type_rewritten_with_sql_is_still_downloaded_never_rendered(self, api, app, cadre):
        """A row whose type was changed behind the service's back (text/html, which a browser would render) is sent
        as opaque bytes, as an attachment, nosniff: no type the sniffing could not have given reaches a browser."""
        case_id = start_accountability(api)["id"]
        attachment = upload(api, case_id, b"<html><script>alert(1)</script>", "a.txt").json
        with app.extensions["cadreflow"].db.unit_of_work() as session:
            session.execute(update(Attachment).where(Attachment.id == attachment["id"]).values(
                content_type="text/html"))
        download = api.get(f"/api/attachments/{attachment['id']}", as_="discipline")
        assert download.status_code == 200 and download.mimetype == "application/octet-stream"
        assert download.headers["Content-Disposition"].startswith("attachment;")
        assert download.headers["X-Content-Type-Options"] == "nosniff"


class TestComments:
    def test_a_comment_is_listed_and_recorded(self, api, cadre):
        case_id = start_accountability(api)["id"]
        response = api.post(f"/api/cases/{case_id}/comments", as_="discipline_head", json={"text": " 请加快核实 "})
        assert response.status_code == 201, response.json
        assert {k: response.json[k] for k in ("author", "text", "case_id")} == {
            "author": "discipline_head", "text": "请加快核实", "case_id": case_id}
        listed = api.get(f"/api/cases/{case_id}/comments", as_="committee").json
        assert [(c["author"], c["text"]) for c in listed] == [("discipline_head", "请加快核实")]
        assert [e["detail"] for e in api.history(case_id) if e["action"] == "comment"] == [
            {"comment_id": response.json["id"], "text_sha256": hashlib.sha256("请加快核实".encode()).hexdigest()}]

    def test_bad_comments_and_outsiders_are_refused(self, api, cadre):
        case_id = start_accountability(api)["id"]
        for body in ({"text": "  "}, {}, {"text": 5}, {"text": "长" * 5001}):
            assert_error(api.post(f"/api/cases/{case_id}/comments", as_="discipline", json=body), 422,
                         fields={"text"})
        assert_error(api.post(f"/api/cases/{case_id}/comments", as_="discipline", json={"text": "x", "y": 1}), 422)
        for outsider in ("audit", "designer"):
            assert_error(api.post(f"/api/cases/{case_id}/comments", as_=outsider, json={"text": "看看"}), 404)
            assert_error(api.get(f"/api/cases/{case_id}/comments", as_=outsider), 404)
        assert api.get(f"/api/cases/{case_id}/comments").json == []

    def test_how_many_comments_a_case_holds_is_bounded(self, template, tmp_path, cadre):
        """Like its files, a case's comments are rows and history entries no one may delete, all listed on its page:
        at most MAX_CASE_COMMENTS (413 past it, nothing written); other cases still take theirs."""
        app = app_from_template(template, tmp_path / "comments", MAX_CASE_COMMENTS=2)
        try:
            api = make_api(app, template)
            api.create_cadre("c1")
            first, second = start_accountability(api)["id"], start_accountability(api)["id"]
            def comment(case_id: int, text: str):
                return api.post(f"/api/cases/{case_id}/comments", as_="discipline", json={"text": text})

            for n in range(2):
                assert comment(first, f"第{n}条").status_code == 201
            refused = comment(first, "第三条")
            assert_error(refused, 413)
            assert "2" in refused.json["error"]["message"]
            assert [c["text"] for c in api.get(f"/api/cases/{first}/comments").json] == ["第0条", "第1条"]
            assert [e["action"] for e in api.history(first)].count("comment") == 2
            assert comment(second, "可以").status_code == 201
        finally:
            app.extensions["cadreflow"].db.dispose()
