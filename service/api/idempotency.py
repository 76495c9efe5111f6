"""The `Idempotency-Key` request header of the API's POSTs (docs/api.md): read and checked here, the request told
apart by a digest of what was sent, its first answer replayed; the keys themselves live in
service/usecases/idempotency.py."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request

from service import services_of
from service.errors import BadRequest, ServiceError
from service.usecases import idempotency

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"  # on a replayed answer, as Stripe's API marks one
MAX_KEY = 255
# Visible ASCII; the draft sends the key as a structured-field string ("…"), and a bare one is taken too.
_TEXT = rf"[\x21\x23-\x5b\x5d-\x7e]{{1,{MAX_KEY}}}"  # no quote or backslash: they would need escapes
_KEY = re.compile(f'"({_TEXT})"|({_TEXT})')
_CHUNK = 1 << 16


def wanted() -> bool:
    """Whether this request asks to be carried out once: a POST sending the header (an empty one too: a 400)."""
    return request.method == "POST" and HEADER in request.headers


def run_once(view: Callable[..., Any], *args: Any, **kwargs: Any) -> Response:
    """Run `view` for the first sending of the request's key and keep its answer when it succeeded; answer a retry
    with that answer; a refused first sending (an error, any status but 2xx) gives the key back."""
    key = _key()
    stored = idempotency.claim(services_of(current_app), g.actor, key, _request_digest())
    if stored is not None:
        replay = Response(stored.body, stored.status, content_type=stored.content_type)
        replay.headers[REPLAYED] = "true"
        return replay
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except BaseException:
        idempotency.give_back(services_of(current_app), g.actor, key)
        raise
    if 200 <= response.status_code < 300:
        _keep(key, response)
    else:
        idempotency.give_back(services_of(current_app), g.actor, key)
    return response


def _keep(key: str, response: Response) -> None:
    """Keep a success's answer for retries. Should that fail (the database gone a moment after), the caller still
    gets the answer: the record exists, and an error now would tell it nothing was made. The key then stays
    taken without an answer, so a retry is a 409 until it expires, never a second record."""
    answer = idempotency.Answer(response.status_code, response.content_type or "application/json",
                                response.get_data(as_text=True))
    try:
        idempotency.keep(services_of(current_app), g.actor, key, answer)
    except ServiceError:
        log.warning("the answer of %s %s could not be kept for its Idempotency-Key", request.method, request.path,
                    exc_info=True)


def _key() -> str:
    raw = request.headers.get(HEADER, "").strip()
    match = _KEY.fullmatch(raw)
    if match is None:
        too_long = len(raw.strip('"')) > MAX_KEY
        problem = f"最多 {MAX_KEY} 个字符 (at most {MAX_KEY} characters)" if too_long else \
            "只能含可见 ASCII 字符 (visible ASCII characters only)"
        raise BadRequest(f"the {HEADER} header is too long or malformed ({HEADER} 请求头过长或格式不正确)",
                         {HEADER: problem})
    return match.group(1) or match.group(2)


def _request_digest() -> str:
    """What makes two sendings the same request: method, path and query, and the body; for a multipart upload
    its fields and files (a client picks a new boundary for each sending of the same file)."""
    digest = hashlib.sha256(f"{request.method} {request.full_path}\n".encode())
    if request.mimetype.startswith("multipart/"):
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"field {len(name)}:{name} {len(value)}:{value}\n".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            digest.update(f"file {len(name)}:{name} {upload.filename!r}\n".encode())
            while chunk := upload.stream.read(_CHUNK):
                digest.update(chunk)
            upload.stream.seek(0)
    else:
        digest.update(request.get_data())
    return digest.hexdigest()
