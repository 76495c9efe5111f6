"""The `cadreflow` command line (a Flask CLI group, so `flask --app service` works too)."""

from __future__ import annotations

import math
import threading
from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from service import services_of
from workflows.engine import DeploymentError

from .db.schema import MigrationRefused
from .errors import ServiceError
from .usecases import processes, users
from .usecases.context import SYSTEM, Services
from .usecases.forms import REACH, out_of_range
from .usecases.roles import seed as seed_roles


def _services() -> Services:
    return services_of(current_app)


def create_schema(services: Services) -> None:
    """Create or upgrade the schema; a migration the data stops is a command's refusal, saying what to fix."""
    try:
        services.db.create_schema()
    except MigrationRefused as exc:
        raise click.ClickException(f"cannot upgrade the database: {exc}") from None


def init_database(services: Services) -> list[str]:
    """Create or upgrade the schema and deploy every new BPMN under the BPMN folder."""
    create_schema(services)
    seed_roles(services)
    deployed = processes.deploy_directory(services, SYSTEM, Path(services.settings["BPMN_DIR"]))
    return [f"{v['key']} v{v['version']}" for v, created in deployed if created]


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the schema; deploy new BPMN/DMN from bpmn/."""
    deployed = init_database(_services())
    click.echo("schema ready; deployed: " + (", ".join(deployed) or "nothing new"))


@click.command("deploy")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@with_appcontext
def deploy_command(paths: tuple[Path, ...]) -> None:
    """Deploy BPMN files (each with the DMN files among PATHS that it calls); folders are searched."""
    files = [f for p in paths for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
    try:
        results = processes.deploy_files(_services(), SYSTEM, files)
    except ServiceError as exc:
        for problem in getattr(exc, "errors", []):
            click.echo(f"  {problem.get('element_id') or '-'} line {problem.get('line') or '-'}: {problem['message']}",
                       err=True)
        raise click.ClickException(exc.message) from exc
    except DeploymentError as exc:  # not expected: deploy_files reads every file first and names the unreadable one
        raise click.ClickException(str(exc)) from None
    if not results:
        raise click.ClickException("nothing to deploy: no executable process in a .bpmn file among the paths "
                                   "(没有可部署的流程：所给路径中没有含可执行流程的 .bpmn 文件)")
    for version, created in results:
        click.echo(f"{version['key']} v{version['version']} " + ("deployed" if created else "unchanged"))


@click.command("create-user")
@click.argument("name")
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True)
@with_appcontext
def create_user_command(name: str, password: str, roles: tuple[str, ...]) -> None:
    """Create a user, or update its roles and password (its logins end); passwords need 10+ characters."""
    try:
        user = users.create_user(_services(), name, password, list(roles))
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"user {user['username']} roles {', '.join(user['roles'])}")


@click.command("demo")
@click.option("--reset-passwords", is_flag=True, help="Give existing demo users new passwords too.")
@with_appcontext
def demo_command(reset_passwords: bool) -> None:
    """Load demo users (one per role), cadres and cases in several states; existing users keep their passwords."""
    from .usecases.demo import load_demo

    services = _services()
    init_database(services)
    try:
        lines = load_demo(services, reset_passwords)
    except ServiceError as error:
        raise click.ClickException(error.message) from error
    for line in lines:
        click.echo(line)


def _day_option(on: str | None) -> date | None:
    """The `--on YYYY-MM-DD` of a scan command, within the dates the API lets a scan name; None means today."""
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError as exc:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--on") from exc
    if day is not None and (problem := out_of_range(day, REACH)) is not None:
        raise click.BadParameter(problem, param_hint="--on")
    return day


@click.command("rotation-scan")
@click.option("--on", "on", default=None, help="Scan as of this date (YYYY-MM-DD); default today.")
@with_appcontext
def rotation_scan_command(on: str | None) -> None:
    """Open the rotation reviews that are due (docs/processes.md §6)."""
    from .usecases.rotation import rotation_scan

    day = _day_option(on)
    opened = rotation_scan(_services(), SYSTEM, day)
    for item in opened:
        click.echo(f"case #{item['case_id']}: cadre {item['cadre_id']} {item['rule']} ({item['years_in_post']} years)")
    click.echo(f"{len(opened)} rotation review(s) opened")


@click.command("early-warning-scan")
@click.option("--on", "on", default=None, help="Scan as of this date (YYYY-MM-DD); default today.")
@with_appcontext
def early_warning_scan_command(on: str | None) -> None:
    """Evaluate every cadre's early-warning signals; keep the watch list, open 提醒谈话 for alerts (§10)."""
    from .usecases.early_warning import scan

    day = _day_option(on)
    result = scan(_services(), SYSTEM, day)
    for item in result["opened"]:
        click.echo(f"cadre {item['cadre_id']}: " + (f"case #{item['case_id']}" if "case_id" in item
                                                     else f"not opened: {item['error']}"))
    click.echo(f"{result['scanned']} cadre(s) scanned: {result['alert']} alert, {result['watch']} watch, "
               f"{sum(1 for i in result['opened'] if 'case_id' in i)} 提醒谈话 opened")


@click.command("integrity-reports")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="The year reported on.")
@with_appcontext
def integrity_reports_command(year: int) -> None:
    """Open the year's 述职述廉 for every leading cadre that has none for it (docs/processes.md §8)."""
    from .usecases.disclosures import open_reports

    result = open_reports(_services(), SYSTEM, year)
    for failure in result["failed"]:
        click.echo(f"refused: {failure['error']}", err=True)
    click.echo(f"{len(result['opened'])} 述职述廉 case(s) opened for {year}"
               + (f": #{', #'.join(map(str, result['opened']))}" if result["opened"] else "")
               + f"; {result['skipped']} cadre(s) already have one")


KEY_FILE = click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                        help="A file holding the anchor's HMAC key; keep it apart from the database.")


GRACE_LIMIT = 365 * 24 * 3600  # a timer a year overdue is a fault whatever the grace; and no date overflows


def _not_nan(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and math.isnan(value):  # NaN is neither below nor above a range's bounds
        raise click.BadParameter("must be a number (必须是数字)")
    return value


@click.command("check")
@click.option("--grace", type=click.FloatRange(0, GRACE_LIMIT), default=None, callback=_not_nan,
              help="Seconds a timer may be overdue (default: the poll interval).")
@click.option("--anchor", "anchor_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also prove each case's history unchanged up to this anchor (`cadreflow anchor`).")
@KEY_FILE
@with_appcontext
def check_command(grace: float | None, anchor_file: Path | None, key_file: Path | None) -> None:
    """Check every case (state loads, tasks match, timers not overdue, history chain intact, and unchanged up to
    an anchor when given), every cadre's personal-report log and the account log; exit 1 on a fault, 2 when the
    anchor itself cannot be trusted."""
    from .usecases.account_log import check_account_log
    from .usecases.anchors import AnchorUnusable, anchor_faults
    from .usecases.check import check_cases
    from .usecases.report_log import check_reports

    if key_file is not None and anchor_file is None:  # not ignored: the operator believes a signature was checked
        raise click.UsageError("--key-file checks an anchor's signature: give --anchor too "
                               "(--key-file 用于核验锚点签名，须同时给出 --anchor)")
    faults: list[str] = []
    if anchor_file is not None:  # first: an anchor that proves nothing stops before the whole database is read
        try:
            faults = anchor_faults(_services(), _read_anchor(anchor_file), _read_key(key_file))
        except AnchorUnusable as exc:  # nothing can be proven by it: not the same as a fault found
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(2) from None
    checked, case_faults = check_cases(_services(), grace)
    _, report_faults = check_reports(_services())
    _, account_faults = check_account_log(_services())
    faults = case_faults + report_faults + account_faults + faults
    for fault in faults:
        click.echo(fault, err=True)
    _warn_of_key_in_database()
    click.echo(f"{checked} case(s) checked, {len(faults)} fault(s)")  # faults of both logs counted too
    if faults:
        raise SystemExit(1)


def _warn_of_key_in_database() -> None:
    """Not a fault of the records, so not counted: the check's reader is told how little the key guards."""
    from .config import secret_key
    from .db.instance_key import KEY_IN_DATABASE, keeps_key_in_database

    settings = current_app.config["CADREFLOW"]
    if not secret_key(settings) and keeps_key_in_database(settings["DATABASE_URL"]):
        click.echo(f"warning: {KEY_IN_DATABASE}", err=True)


@click.command("resync-timers")
@with_appcontext
def resync_timers_command() -> None:
    """Set each open case's next timer due time to its engine's where they differ (what `check` reports as
    "differs from the engine's"), so the worker fires its timers; exit 1 when a case's state does not load."""
    from .usecases.timers import resync_timer_dues

    read, found = resync_timer_dues(_services())
    for item in found:
        if item.error is not None:
            click.echo(f"case {item.case_id}: {item.error}", err=True)
        else:
            click.echo(f"case {item.case_id}: next_timer_due {item.stored} -> {item.engine}")
    resynced = sum(item.error is None for item in found)
    click.echo(f"{read} open case(s) read, {resynced} due time(s) set (已校正 {resynced} 个定时到期时间)")
    if resynced < len(found):
        raise SystemExit(1)


@click.command("mail-outbox")
@click.option("--retry-failed", is_flag=True, help="Queue the mails given up again (after the server or the "
              "addresses were fixed).")
@with_appcontext
def mail_outbox_command(retry_failed: bool) -> None:
    """How many mails wait, went, were given up or dropped, and why the given-up ones failed; exit 1 while any
    given-up mail is left (a monitor's check), --retry-failed queues them again."""
    from .usecases import mailing

    if retry_failed:
        click.echo(f"{mailing.retry_failed(_services())} failed mail(s) queued again (已重新排队)")
    report = mailing.outbox_report(_services())
    for item in report["failed"]:
        queued = item["created_at"].isoformat(timespec="seconds")
        click.echo(f"mail {item['id']} to {item['username']} ({item['kind']}, queued {queued}) failed after "
                   f"{item['attempts']} attempt(s): {item['last_error']}", err=True)
    counts, oldest = report["counts"], report["oldest_pending"]
    since = f" (oldest queued {oldest.isoformat(timespec='seconds')})" if oldest is not None else ""
    click.echo(f"pending {counts['pending']}{since}, sent {counts['sent']}, failed {counts['failed']}, dropped "
               f"{counts['dropped']} (待发 {counts['pending']}，已发 {counts['sent']}，失败 {counts['failed']}，"
               f"已放弃 {counts['dropped']})")
    if counts["failed"]:
        raise SystemExit(1)


@click.command("anchor")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write the anchor here (default: standard output).")
@KEY_FILE
@with_appcontext
def anchor_command(out: Path | None, key_file: Path | None) -> None:
    """Write every case's history head (id, sequence, hash) and every cadre's report log head as a signed anchor,
    to keep outside the database."""
    import json

    from .usecases.anchors import take_anchor

    key = _read_key(key_file)
    if out is not None:
        _refuse_existing(out)  # before the whole database is read
    anchor = take_anchor(_services(), key)
    text = json.dumps(anchor, separators=(",", ":")) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        _write_once(out, text)
        click.echo(f"anchored {len(anchor['cases'])} case(s) in {out}", err=True)


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise click.ClickException(f"{path} exists: an anchor is written once, never replaced; choose a new name "
                                   f"({path} 已存在：锚点只写一次，不可覆盖，请换一个文件名)")


def _write_once(path: Path, text: str) -> None:
    """`text` in a new file at `path`, whole or not at all: written to a temporary file in the same folder, then
    renamed into place (a crash or a full disk never leaves half an anchor under the anchor's name)."""
    import os

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        _refuse_existing(path)  # again: another anchor may have taken the name while the database was read
        os.replace(temporary, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc} (无法写入锚点文件)") from None
    finally:
        temporary.unlink(missing_ok=True)


def _read_anchor(path: Path) -> object:
    import json

    from .usecases.anchors import AnchorUnusable

    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnchorUnusable(f"the anchor file is not JSON (锚点文件不是 JSON): {exc}") from None


def _read_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    key = path.read_bytes().strip()
    if len(key) < 16:
        raise click.BadParameter("the key must hold at least 16 bytes (密钥至少 16 字节)", param_hint="--key-file")
    return key


@click.command("worker")
@click.option("--once", is_flag=True, help="Fire what is due now and exit.")
@with_appcontext
def worker_command(once: bool) -> None:
    """Fire due timers (forever, or once)."""
    from .worker import run_worker

    moved = run_worker(_services(), threading.Event(), once=once)
    if once:
        click.echo(f"timers fired on {moved} case(s)")


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, type=click.IntRange(1, 256))  # 0 would leave every request unanswered
@with_appcontext
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the web app with an in-process timer worker (the one-machine default)."""
    import logging

    import waitress

    from .request_log import RequestLog, log_to_stderr
    from .worker import start_worker_thread

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    create_schema(_services())
    # waitress drops X-Forwarded-* by default; with TRUSTED_PROXIES set, the app's ProxyFix reads them instead.
    trusting = int(app.config["CADREFLOW"].get("TRUSTED_PROXIES") or 0) > 0
    # waitress reads (and spools to disk) a whole body before the app sees it, up to its own 1 GB: bounded by the
    # largest body the app takes from anyone, a bigger one is a 413 before it is read, whoever sends it.
    largest = int(app.config["MAX_CONTENT_LENGTH"])
    try:  # listen first: an address that cannot be served is said before any timer fires
        server = waitress.create_server(RequestLog(app), host=host, port=port, threads=threads, ident="cadreflow",
                                        clear_untrusted_proxy_headers=not trusting, max_request_body_size=largest)
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"cannot listen on {host} port {port}: {exc} (无法在该地址和端口监听)") from None
    start_worker_thread(_services())
    click.echo(f"CadreFlow serving on http://{host}:{port}/ (timer worker running)")
    logging.basicConfig()  # as waitress.serve did: waitress's own warnings and errors reach stderr
    log_to_stderr()
    server.run()


@click.command("bulk-start")
@click.argument("process")
@click.option("--data", "data", default="{}", help="Start data shared by every case, as JSON.")
@click.option("--for", "selector", default=None, help="Which cadres: an expression over their fields.")
@click.option("--dedupe", default="open", help='"open" (no second open case) or "field:<name>" (e.g. field:year).')
@with_appcontext
def bulk_start_command(process: str, data: str, selector: str | None, dedupe: str) -> None:
    """Open a case of PROCESS for many cadres at once, showing progress (resumable, idempotent per cadre)."""
    import json

    from .usecases import bulk

    try:
        shared = json.loads(data)
    except ValueError as exc:
        raise click.BadParameter("not JSON", param_hint="--data") from exc
    try:
        job = bulk.create_job(_services(), SYSTEM, process, shared, selector, dedupe)
    except ServiceError as exc:
        fields = "; ".join(f"{name}: {problem}" for name, problem in (exc.fields or {}).items())
        raise click.ClickException(f"{exc.message}{' — ' + fields if fields else ''}") from exc
    while bulk.run_batch(_services(), job["id"]) is not None:
        progress = bulk.get_job(_services(), SYSTEM, job["id"])
        click.echo(f"opened {progress['opened']}, skipped {progress['skipped']}, failed {progress['failed']} "
                   f"(up to cadre {progress['cursor']})")
    done = bulk.get_job(_services(), SYSTEM, job["id"])
    if done["status"] == bulk.FAILED:
        raise click.ClickException(f"the job failed after {done['opened']} opened: {done['errors'][-1]['error']}")
    click.echo(f"done: {done['opened']} opened, {done['skipped']} skipped, {done['failed']} failed")


def register_commands(app: Flask) -> None:
    commands = (init_db_command, deploy_command, create_user_command, demo_command, rotation_scan_command,
                check_command, resync_timers_command, mail_outbox_command, anchor_command, worker_command,
                serve_command, bulk_start_command, integrity_reports_command, early_warning_scan_command)
    for command in commands:
        app.cli.add_command(command)


def main() -> None:
    """Entry point of the `cadreflow` console script."""
    from . import create_app
    from .config import SettingsError

    try:
        FlaskGroup(create_app=create_app, add_default_commands=False, load_dotenv=False)(prog_name="cadreflow")
    except SettingsError as exc:
        raise SystemExit(f"cadreflow: refusing to start: {exc}") from None
