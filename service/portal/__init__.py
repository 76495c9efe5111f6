"""The public portal: pages and JSON anyone may use without logging in, plus the staff's report pages.

- `/public/...` (JSON, `api.py`): reports, tracking, notices and objections (docs/api.md § Public portal).
- `/report`, `/report/track`, `/notices` (pages, `pages.py`): the same, in Chinese, for phones first.
- `/reports` (staff, `staff.py`): the discipline roles' triage inbox and each report's file.

Views only parse, call one use case of `service/usecases/portal.py` (the challenge: `public_posts.py`) and
render. Every public POST that stores something (a report, an objection) is counted per client address (and
IPv6 /48) and needs a solved proof-of-work challenge; the track form posts only to keep the key out of URLs
(a read, like its JSON twin). Bodies are bounded. Every page says `Cache-Control: no-store` (`no_store`),
logged in or not: they show tracking codes, query keys, replies and contacts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, abort, current_app, request

from service import services_of
from service.usecases.context import Services
from service.usecases.public_posts import Admission


def register_portal(app: Flask) -> None:
    from . import api, labels, pages, staff

    app.register_blueprint(api.bp, url_prefix="/public")
    app.register_blueprint(pages.bp)
    app.register_blueprint(staff.bp)
    app.context_processor(labels.names)


def services() -> Services:
    return services_of(current_app)


def signing_key() -> str:
    """The key that signs challenges: the app's, or the instance's generated one."""
    if not current_app.secret_key:
        current_app.secret_key = services().signing_key
    return str(current_app.secret_key)


def bound_body() -> None:
    """Refuse bodies over PUBLIC_MAX_BODY (413), announced or streamed: every POST that needs no login is
    bounded so (whole blueprints with `before_request(bound_body)`, single views with `@bounded`)."""
    limit = int(services().settings["PUBLIC_MAX_BODY"])
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    request.max_content_length = limit


def no_store(response: Response) -> Response:
    """Pages of the portal (whole blueprints with `after_request(no_store)`, errors included) are kept by no
    browser or proxy: a report's code, key and reply must not stay on a shared office PC. Not the static files."""
    if not (request.endpoint or "").endswith("static"):
        response.headers["Cache-Control"] = "no-store"
    return response


def bounded(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view anyone may POST to without logging in (login, token, language): its body bounded like the portal's."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound_body()
        return view(*args, **kwargs)
    wrapper.bounded = True  # type: ignore[attr-defined]  # seen by `is_bounded` before the view runs
    return wrapper


def is_bounded(app: Flask) -> bool:
    """Whether this request's body is bounded by PUBLIC_MAX_BODY (its blueprint's `bound_body`, or `@bounded`).
    App-wide checks that read the body first (the CSRF check reads the form) must bound it themselves."""
    view = app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "bounded", False)) or any(
        bound_body in app.before_request_funcs.get(name, ()) for name in request.blueprints)


def admission(challenge: object, nonce: object) -> Admission:
    return Admission(request.remote_addr or "", challenge, nonce, signing_key())
