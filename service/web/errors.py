"""HTML error pages for the UI, and the one helper that turns a use-case error into feedback.

The JSON API registered its handlers first; for paths under /api they stay in charge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, flash, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from service.api import error_headers, status_of
from service.api import is_api_path as is_api_path  # re-exported for the web layer
from service.errors import ServiceError

from .i18n import localize

TITLES = {
    400: _l("请求有误"), 401: _l("请先登录"), 403: _l("无权访问"), 404: _l("页面不存在"),
    405: _l("不支持的操作"), 409: _l("状态已变化"), 413: _l("文件过大"), 422: _l("填写有误"),
    429: _l("尝试过于频繁"), 500: _l("服务器出错"), 503: _l("暂时无法使用"),
}
HINTS = {
    403: _l("您的角色不能查看或办理此项。如需权限，请联系系统管理员。"),
    404: _l("您要找的页面或记录不存在，可能已被删除或地址有误。"),
    409: _l("在您操作期间，其他人已经改变了它的状态。请刷新后查看最新情况。"),
    500: _l("处理请求时出现意外错误，请稍后重试。"),
}
TASK_TAKEN = _l("此任务刚刚已由他人办理")


def render_error(status: int, message: str = "", title: Any = None) -> tuple[str, int]:
    """The error page for a status, with a message for people."""
    return render_template("error.html", status=status, title=title or TITLES.get(status, TITLES[400]),
                           message=message, hint=HINTS.get(status, "")), status


Labels = Mapping[str, Any]  # a form's field names -> the labels the form shows them by (lazy strings)


def flash_error(error: ServiceError, labels: Labels | None = None) -> None:
    """Show a use-case error on the next page, with each field's problem under the label its form shows, in the
    page's language (the field's name only where the form has no label for it)."""
    flash(localize(error.message), "error")
    for name, problem in (error.fields or {}).items():
        label = (labels or {}).get(name, name)
        flash(gettext("%(field)s：%(problem)s", field=label, problem=localize(problem)), "error")


def _service_error(error: ServiceError) -> tuple[str, int, dict[str, str]]:
    return (*render_error(status_of(error), localize(error.message)), error_headers(error))


def _http_error(error: HTTPException) -> tuple[str, int]:
    if isinstance(error, CSRFError):
        return render_error(400, str(_l("表单缺少安全令牌或令牌已失效，已拒绝提交。请刷新页面后重试。")),
                            _l("安全校验失败"))
    return render_error(error.code or 500)


def register(app: Flask) -> None:
    _dispatch(app, ServiceError, _service_error)
    _dispatch(app, HTTPException, _http_error)


def _dispatch(app: Flask, cls: type[Exception], html: Callable[[Any], Any]) -> None:
    """Handle `cls` as HTML outside /api, keeping the JSON API's handler for /api."""
    json_handler = app.error_handler_spec.get(None, {}).get(None, {}).get(cls)

    def handle(error: Any) -> Any:
        if json_handler is not None and is_api_path(request.path):
            return json_handler(error)
        return html(error)

    app.register_error_handler(cls, handle)
