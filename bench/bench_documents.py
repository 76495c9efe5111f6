"""Benchmark: printing the longest documents, with the tables laid out as shipped (fixed) and as browsers do
by default (automatic), to show why the documents' stylesheet fixes them.

A cadre with `--entries` late personal reports, each summary at its 2,000-character limit, gives an
integrity ledger of that many long rows; an admonishment record with 2,000-character minutes gives one
long cell. Each is rendered from the same HTML twice, once with `table-layout: fixed` taken out. Not a
test: it asserts nothing.

    python bench/bench_documents.py [--entries 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import render_template  # noqa: E402 - after the path is set

from service import create_app  # noqa: E402
from service.cli import init_database  # noqa: E402
from service.printing import TEMPLATES  # noqa: E402
from service.usecases import cadres, documents, ledgers, personal_reports, tasks  # noqa: E402
from service.usecases.cases import start_case  # noqa: E402
from service.usecases.context import SYSTEM, Actor  # noqa: E402

CADRE = {"id": "B1", "name": "基准", "unit": "县局", "post": "副局长", "post_level": "leading",
         "post_started_on": "2020-01-01"}
LONG = ("购买住房一套，面积一百二十平方米，" * 120)[:2000]
FIXED = "table-layout: fixed;"


def render_seconds(html: str) -> float:
    from weasyprint import HTML  # type: ignore[import-untyped]

    began = time.perf_counter()
    HTML(string=html).write_pdf()
    return time.perf_counter() - began


def compare(label: str, html: str) -> None:
    assert FIXED in html, "the shipped stylesheet no longer fixes the tables"
    fixed, automatic = render_seconds(html), render_seconds(html.replace(FIXED, ""))
    print(f"{label:52}: fixed {fixed:6.2f} s   automatic {automatic:7.2f} s   ({automatic / fixed:.0f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        app = create_app({"DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3"})
        services = app.extensions["cadreflow"]
        init_database(services)
        cadres.create_cadre(services, SYSTEM, CADRE)
        today = services.today()
        for day in range(args.entries):
            personal_reports.add_report(services, SYSTEM, "B1", {
                "kind": "property", "event_on": (today - timedelta(days=400 + day)).isoformat(),
                "reported_on": (today - timedelta(days=day)).isoformat(), "summary": LONG})
        inspector = Actor("bench", frozenset({"discipline"}))
        case = start_case(services, inspector, "admonishment", "B1", {"trigger": "complaint", "summary": LONG})
        for element, data in (("intake_review", {"form": "talk", "reason": "情况属实"}),
                              ("conduct_talk", {"talk_date": "2024-05-01", "minutes": LONG})):
            task = next(t for t in case["open_tasks"] if t["element_id"] == element)
            case = tasks.complete_task(services, Actor("bench", frozenset({task["role"]})), task["id"], data)
        with app.test_request_context():
            ledger = ledgers.ledger_document(services, inspector, "B1", "integrity")
            record = documents.document(services, inspector, case["id"], "admonishment_record")
            compare(f"integrity ledger, {len(ledger['items'])} entries of 2,000 characters",
                    render_template(TEMPLATES.format(kind="ledger"), doc=ledger))
            compare("admonishment record, minutes of 2,000 characters",
                    render_template(TEMPLATES.format(kind="admonishment_record"), doc=record))
        services.db.dispose()


if __name__ == "__main__":
    main()
