"""The printing port: a case document rendered by the UI's Jinja templates, printed to PDF by WeasyPrint."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template

TEMPLATES = "documents/{kind}.html"


def pdf_of(document: dict[str, Any]) -> bytes:
    """The PDF of a document's content (`service.usecases.documents.document`)."""
    # Imported on first use: it loads Pango, which only printing needs.
    from weasyprint import HTML, URLFetcher  # type: ignore[import-untyped]

    html = render_template(TEMPLATES.format(kind=document["kind"]), doc=document)
    # A document needs nothing from outside (its fonts are the system's): no URL of any scheme is fetched.
    pdf: bytes = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()
    return pdf


def pdf_response(document: dict[str, Any], filename: str | None = None) -> Response:
    """The document as an inline PDF, named after its case and kind (or `filename`)."""
    filename = filename or f"case-{document['case_id']}-{document['kind']}.pdf"
    return Response(pdf_of(document), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})
