"""The printing port: a case document rendered by the UI's Jinja templates, printed to PDF by WeasyPrint.

Printing runs in the web process and holds its interpreter for a good part of a second per page: a process
prints at most PDF_RENDERS_AT_ONCE documents at a time, and a request that waits PDF_WAIT_SECONDS for its
turn answers 503. Many people printing at once then wait for the printer instead of slowing every page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Response, current_app, render_template

from service.errors import Unavailable

TEMPLATES = "documents/{kind}.html"
_PRINTER = "cadreflow.printer"  # app.extensions key: the app's semaphore of renders at once


def pdf_of(document: dict[str, Any]) -> bytes:
    """The PDF of a document's content (`service.usecases.documents.document`)."""
    # Imported on first use: it loads Pango, which only printing needs.
    from weasyprint import HTML, URLFetcher  # type: ignore[import-untyped]

    html = render_template(TEMPLATES.format(kind=document["kind"]), doc=document)
    with _printer_turn():
        # A document needs nothing from outside (its fonts are the system's): no URL of any scheme is fetched.
        pdf: bytes = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()
    return pdf


@contextmanager
def _printer_turn() -> Iterator[None]:
    """Hold one of this process's PDF_RENDERS_AT_ONCE turns at printing (503 after PDF_WAIT_SECONDS of waiting)."""
    settings = current_app.extensions["cadreflow"].settings
    printer = current_app.extensions.get(_PRINTER)
    if printer is None:  # setdefault: two first requests at once still share one semaphore
        printer = current_app.extensions.setdefault(
            _PRINTER, threading.BoundedSemaphore(max(1, int(settings["PDF_RENDERS_AT_ONCE"]))))
    if not printer.acquire(timeout=float(settings["PDF_WAIT_SECONDS"])):
        raise Unavailable("documents are being printed for others; retry shortly (打印繁忙，请稍后重试)")
    try:
        yield
    finally:
        printer.release()


def pdf_response(document: dict[str, Any], filename: str | None = None) -> Response:
    """The document as an inline PDF, named after its case and kind (or `filename`)."""
    filename = filename or f"case-{document['case_id']}-{document['kind']}.pdf"
    return Response(pdf_of(document), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})
