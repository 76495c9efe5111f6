"""Files on a case: upload (type read from the content, size bounded), list, download under the case's read policy.

The bytes go to the file store (service/filestore.py) under their SHA-256; the row and the history
entry are written in one transaction under the case's lock. Nothing attached is ever removed (it is part of
the case's record), so what one case may hold and what one user may add in a day are bounded too: else one
reader of one case could fill the store's disk.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import filetype
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import Attachment, Case, utcnow
from service.errors import Invalid, NotFound, TooLarge, TooManyAttempts

from . import access_log, policy
from .casehistory import lock_case, record
from .context import Actor, Services
from .views import iso

TEXT = "text/plain; charset=utf-8"
# What may be attached (PROCESSES: case documents): PDF, images, Office documents, plain text; with the file name
# extensions each may carry, the first the one a name of another gets (a text named .bat is saved as .bat.txt).
EXTENSIONS = {
    "application/pdf": (".pdf",), "image/jpeg": (".jpg", ".jpeg"), "image/png": (".png",), "image/gif": (".gif",),
    "image/webp": (".webp",), "image/bmp": (".bmp",), "image/tiff": (".tif", ".tiff"),
    "application/msword": (".doc",), "application/vnd.ms-excel": (".xls",),
    "application/vnd.ms-powerpoint": (".ppt",), "application/rtf": (".rtf",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (".pptx",),
    "application/vnd.oasis.opendocument.text": (".odt",), "application/vnd.oasis.opendocument.spreadsheet": (".ods",),
    "application/vnd.oasis.opendocument.presentation": (".odp",),
    TEXT: (".txt", ".md", ".log"),  # not .csv: a spreadsheet would run what a formula in it says
}
ALLOWED_TYPES = frozenset(EXTENSIONS) - {TEXT}
UPLOAD_WINDOW = timedelta(days=1)  # MAX_DAILY_UPLOAD_BYTES counts what a user attached in this time
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\"<>|:*?]")


def sniff(content: bytes) -> str | None:
    """The content type read from the bytes themselves (None: not a type that may be attached)."""
    kind = filetype.guess(content)
    if kind is not None:
        return kind.mime if kind.mime in ALLOWED_TYPES else None
    return TEXT if _is_text(content) else None


def _is_text(content: bytes) -> bool:
    """UTF-8 text without control characters other than tabs and line ends."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 32 and ch not in "\t\r\n\f" for ch in text)


def clean_filename(name: Any) -> str:
    """The client's file name reduced to a safe base name (no path, quotes, control or invisible characters: a
    right-to-left override shows `evil\u202egpj.exe` as evilexe.jpg)."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    visible = "".join("_" if unicodedata.category(ch) in _INVISIBLE else ch for ch in base)
    return _UNSAFE_NAME.sub("_", visible).strip(" .")[:200] or "attachment"


_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})  # controls (C1 too), format characters, line separators


def named_for(filename: str, content_type: str) -> str:
    """The name a file is offered under: its own when its extension fits what its bytes are, else with that
    type's extension added, so a script uploaded as text is never saved as one by the colleague who opens it."""
    extensions = EXTENSIONS.get(content_type, ())
    if not extensions or filename.lower().endswith(extensions):
        return filename
    return filename[:200 - len(extensions[0])] + extensions[0]


OPAQUE = "application/octet-stream"


def served_type(content_type: str) -> str:
    """The type a download is sent as: the stored one when the service could have sniffed it, else opaque bytes,
    so a row rewritten to text/html (say) is never rendered by a browser whatever the other headers say."""
    return content_type if content_type in EXTENSIONS else OPAQUE


def add_attachment(services: Services, actor: Actor, case_id: int, filename: Any,
                   content: bytes | None) -> dict[str, Any]:
    """Attach a file to a case the actor may read (else 404, before anything else); recorded in its history."""
    with services.db.unit_of_work() as session:
        policy.check_case(session, actor, case_id)
        policy.require(actor, "case.attach")
        content_type = _checked(services, content)
        assert content is not None  # _checked refused a missing file
        case = lock_case(session, case_id)
        _check_quotas(services, session, actor, case.id, len(content))
        row = Attachment(case_id=case.id, filename=named_for(clean_filename(filename), content_type),
                         content_type=content_type,
                         size=len(content), sha256=services.files.put(content), uploaded_by=actor.username,
                         at=utcnow())
        session.add(row)
        session.flush()
        record(session, case, actor.username, "attach", None,
               {"attachment_id": row.id, "filename": row.filename, "size": row.size, "sha256": row.sha256,
                "content_type": row.content_type})
        return attachment_view(row)


def _checked(services: Services, content: bytes | None) -> str:
    """The sniffed type of an upload that may be attached: present, not empty, within the limit."""
    if content is None:
        raise Invalid("send the file as multipart field `file` (请选择要上传的文件)", {"file": "必填 (required)"})
    limit = int(services.settings["MAX_ATTACHMENT_BYTES"])
    if len(content) > limit:
        raise TooLarge(f"the file is larger than {limit} bytes (文件超过 {limit} 字节上限)")
    if not content:
        raise Invalid("the file is empty (文件为空)", {"file": "文件为空 (empty file)"})
    content_type = sniff(content)
    if content_type is None:
        raise Invalid("only PDF, images, Office documents and text may be attached "
                      "(仅支持 PDF、图片、Office 文档和文本)",
                      {"file": "不支持的文件类型 (unsupported file type)"})
    return content_type


def _check_quotas(services: Services, session: Session, actor: Actor, case_id: int, size: int) -> None:
    """Refuse an upload past what its case may hold, in files or bytes (413), or its uploader may add in a day (429,
    with when to retry).
    Under the case's lock the case's total is exact; one user's uploads to several cases at once may pass the
    daily total by the few files in flight."""
    per_case, most = int(services.settings["MAX_CASE_ATTACHMENT_BYTES"]), int(services.settings["MAX_CASE_ATTACHMENTS"])
    count, held = session.execute(select(func.count(), func.coalesce(func.sum(Attachment.size), 0)).where(
        Attachment.case_id == case_id)).one()
    if count >= most:  # else a million one-byte files: rows and history entries that are never deleted
        raise TooLarge(f"the case already holds {most} attachments (本案附件已达 {most} 个上限)")
    if (held or 0) + size > per_case:
        raise TooLarge(f"the case's attachments would pass {per_case} bytes together "
                       f"(本案附件总量将超过 {per_case} 字节上限)")
    per_day = int(services.settings["MAX_DAILY_UPLOAD_BYTES"])
    if size > per_day:  # would never fit, however long one waited
        raise TooLarge(f"the file is larger than the daily upload limit of {per_day} bytes "
                       f"(文件超过每日上传 {per_day} 字节上限)")
    recent = session.execute(select(Attachment.at, Attachment.size).where(
        Attachment.uploaded_by == actor.username, Attachment.at > utcnow() - UPLOAD_WINDOW).order_by(Attachment.at))
    wait = _seconds_until_it_fits([(row.at, row.size) for row in recent], size, per_day)
    if wait:
        raise TooManyAttempts(f"you attached {per_day} bytes in the last 24 hours; retry in {wait} s "
                              f"(24 小时内上传附件已达 {per_day} 字节上限，请 {wait} 秒后重试)", wait)


def _seconds_until_it_fits(recent: list[tuple[datetime, int]], size: int, per_day: int) -> int:
    """0 when `size` more fits in the day's uploads (`recent`, oldest first); else the seconds until enough of them,
    oldest first, have left the window (with all gone it fits: size <= per_day)."""
    left = sum(sized for _, sized in recent)
    if left + size <= per_day:
        return 0
    for at, sized in recent:
        left -= sized
        if left + size <= per_day:
            return max(1, int((at + UPLOAD_WINDOW - utcnow()).total_seconds()) + 1)
    raise AssertionError("a file no larger than the daily limit fits once the window is empty")


def list_attachments(services: Services, actor: Actor, case_id: int) -> list[dict[str, Any]]:
    """The files of a case the actor may read, oldest first; the read is logged (`attachments`)."""
    return access_log.read_case(services, actor, case_id, "attachments",
                                lambda session, case: case_attachments(session, case.id))


def case_attachments(session: Any, case_id: int) -> list[dict[str, Any]]:
    """The files of a case (inside an open session, its case already found readable)."""
    rows = session.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id))
    return [attachment_view(row) for row in rows]


def read_attachment(services: Services, actor: Actor, attachment_id: int) -> tuple[dict[str, Any], bytes]:
    """A file and its bytes, if the actor may read its case (else 404, like an unknown id); the read is logged."""
    with services.db.unit_of_work(write=False) as session:
        row = session.scalar(select(Attachment).join(Case, Case.id == Attachment.case_id).where(
            Attachment.id == attachment_id, policy.case_filter(actor)))
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found (附件不存在)")
        view, cadre_id = attachment_view(row), session.scalar(select(Case.cadre_id).where(Case.id == row.case_id))
    try:
        content = services.files.get(view["sha256"])
    except FileNotFoundError:
        raise NotFound(f"attachment {attachment_id}'s file is missing from the store (附件文件缺失)") from None
    access_log.note(services, actor, "attachment", view["case_id"], cadre_id)
    return view, content


def attachment_view(row: Attachment) -> dict[str, Any]:
    return {"id": row.id, "case_id": row.case_id, "filename": named_for(row.filename, row.content_type),
            "content_type": row.content_type,
            "size": row.size, "sha256": row.sha256, "uploaded_by": row.uploaded_by, "at": iso(row.at)}
