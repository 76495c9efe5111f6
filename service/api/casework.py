"""HTTP views for working on a case: its attachments and comments."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request

from service.usecases import attachments, comments

from .auth import json_body, requires, services

bp = Blueprint("casework", __name__)
CASE = "/cases/<int(max=2147483647):case_id>"


@bp.post(f"{CASE}/attachments")
@requires()
def attach(case_id: int) -> Any:
    upload = request.files.get("file")
    content = upload.read(int(services().settings["MAX_ATTACHMENT_BYTES"]) + 1) if upload is not None else None
    name = upload.filename if upload is not None else None
    return jsonify(attachments.add_attachment(services(), g.actor, case_id, name, content)), 201


@bp.get(f"{CASE}/attachments")
@requires()
def list_attachments(case_id: int) -> Any:
    return jsonify(attachments.list_attachments(services(), g.actor, case_id))


@bp.get("/attachments/<int(max=2147483647):attachment_id>")
@requires()
def download(attachment_id: int) -> Any:
    return download_response(*attachments.read_attachment(services(), g.actor, attachment_id))


def download_response(view: dict[str, Any], content: bytes) -> Response:
    """A file as a download (never shown inline: its type was sniffed, but it is still someone's upload)."""
    # As stored (text already names its charset), but only a type uploads are sniffed as.
    response = Response(content, content_type=attachments.served_type(view["content_type"]))
    response.headers["Content-Disposition"] = content_disposition(view["filename"])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def content_disposition(filename: str) -> str:
    """`attachment` with the name in ASCII (older clients) and in UTF-8 (RFC 6266), as headers must be Latin-1."""
    plain = filename.encode("ascii", "ignore").decode().strip()
    plain = plain if plain and not plain.startswith(".") else f"attachment{plain}"  # 材料.pdf: attachment.pdf
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


@bp.post(f"{CASE}/comments")
@requires()
def comment(case_id: int) -> Any:
    return jsonify(comments.add_comment(services(), g.actor, case_id, json_body({"text"}).get("text"))), 201


@bp.get(f"{CASE}/comments")
@requires()
def list_comments(case_id: int) -> Any:
    return jsonify(comments.list_comments(services(), g.actor, case_id))
