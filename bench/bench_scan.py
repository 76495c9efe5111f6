"""Benchmark: the early-warning scan (PROCESSES.md §10) over a county of cadres with records.

Creates N cadres (1,000 by default; `--cadres 100000` for the full county) on PostgreSQL, gives them
records in SQL (public reports linked to every 10th cadre, three to every 100th; late personal reports
to every 25th, two to every 200th; assessment grades `basic` for every 50th), then times one scan: the
signals in one grouped statement, the `early_warning` table evaluated once per distinct signal
combination, the watch list written and a 提醒谈话 opened per alert. Then times a second scan (which
opens nothing new). Not a test: it asserts nothing.

    python bench/bench_scan.py [--cadres 100000] [--database postgresql+psycopg://postgres@127.0.0.1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_bulk import drop_database, make_database  # noqa: E402 - after the path is set
from service import create_app  # noqa: E402
from service.cli import init_database  # noqa: E402
from service.db.models import WatchEntry  # noqa: E402
from service.usecases import early_warning  # noqa: E402
from service.usecases.context import SYSTEM  # noqa: E402


def add_records(url: str, count: int) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cadres (id, name, unit, post, post_level, post_started_on) "
            "SELECT 'w' || lpad(n::text, 7, '0'), '干部' || n, '第' || (n % 40) || '单位', '局长', "
            "CASE WHEN n % 3 = 0 THEN 'leading' ELSE 'middle' END, DATE '2018-01-01' "
            "FROM generate_series(1, :count) AS n"), {"count": count})
        version = connection.scalar(text("SELECT max(id) FROM process_versions WHERE process_key = 'public_report'"))
        connection.execute(text(
            "INSERT INTO cases (process_key, process_version_id, cadre_id, status, outcome, data, state, version, "
            "created_by, created_at, updated_at, history_seq, search_text, has_waits, retry_attempts) "
            "SELECT 'public_report', :version, 'w' || lpad(n::text, 7, '0'), 'completed', 'transferred', "
            "'{\"channel\": \"hotline\"}', '', 1, 'bench', now() - (r || ' days')::interval, now(), 0, '', false, 0 "
            "FROM generate_series(1, :count) AS n, generate_series(1, 3) AS r "
            "WHERE n % 10 = 0 AND (r = 1 OR n % 100 = 0)"), {"count": count, "version": version})
        connection.execute(text(
            "INSERT INTO personal_reports (cadre_id, kind, event_on, reported_on, summary, found_unreported, late, "
            "recorded_by, recorded_at) "
            "SELECT 'w' || lpad(n::text, 7, '0'), 'property', current_date - 200 - r, current_date - r, '购房', "
            "false, true, 'bench', now() "
            "FROM generate_series(1, :count) AS n, generate_series(1, 2) AS r "
            "WHERE n % 25 = 0 AND (r = 1 OR n % 200 = 0)"), {"count": count})
        connection.execute(text("ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cadres", type=int, default=1_000)
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1")
    options = parser.parse_args()
    url = make_database(options.database)
    app = create_app({"DATABASE_URL": url, "EXECUTOR_WORKERS": 2})
    services = app.extensions["cadreflow"]
    try:
        init_database(services)
        began = time.perf_counter()
        add_records(url, options.cadres)
        print(f"{options.cadres:,} cadres with records made in {time.perf_counter() - began:.1f} s")
        for label in ("first scan", "second scan"):
            began = time.perf_counter()
            result = early_warning.scan(services, SYSTEM)
            seconds = time.perf_counter() - began
            opened = sum(1 for item in result["opened"] if "case_id" in item)
            print(f"{label}: {result['scanned']:,} cadres in {seconds:.2f} s "
                  f"({result['alert']:,} alert, {result['watch']:,} watch, {opened:,} 提醒谈话 opened)")
        with services.db.unit_of_work(write=False) as session:
            print(f"watch list: {session.scalar(select(func.count()).select_from(WatchEntry)):,} cadres")
    finally:
        services.db.dispose()
        drop_database(options.database, url)


if __name__ == "__main__":
    main()
