"""Browser tests: a real `cadreflow serve` with demo data, driven by headless Debian Chromium (Playwright).

The server's database is prepared in-process through the use cases (the demo loader plus one
departure audit handed to its team, whose fieldwork deadline is one second), then `serve` runs it
with its timer worker. Screenshots of each main page at 1280 and 390 px go to test-artifacts/screenshots/.

A click that navigates returns once the new page is committed, before it is parsed: read a page after a
click through `expect(...)`, or after `page.wait_for_url`/`page.wait_for_load_state()`, never with a bare
`count()`/`inner_text()`. `CADREFLOW_UI_SLOW=4,30` (CPU slowed 4 times, pages at 30 KB/s, static files
unthrottled) makes such races fail every time; run it after changing a journey.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service import create_app
from service.cli import init_database
from service.usecases import cases, tasks, users
from service.usecases.context import Actor
from service.usecases.demo import load_demo
from tests.conftest import TEST_SECRET_KEY
from tests.net import free_port

playwright_api = pytest.importorskip("playwright.sync_api")
playwright_api.expect.set_options(timeout=30_000)  # as long as every other wait here: the CI machine is shared

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "ui-tests-pw"
ROLES = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head",
         "designer", "admin"]
DEADLINES = {"audit_fieldwork": "PT1S"}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (1280, 390)
SLOW = [int(part) for part in os.environ.get("CADREFLOW_UI_SLOW", "").split(",") if part]  # CPU rate, KB/s
CLI = [sys.executable, "-c", "from service.cli import main; main()"]


class Server:
    """The running service: its base URL and the ids of the cases the journeys use."""

    def __init__(self, base: str, fixtures: dict[str, Any]) -> None:
        self.base = base
        self.fixtures = fixtures


def _prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Schema, processes, users with a known password, demo cadres and cases, one audit in fieldwork."""
    app = create_app(settings)
    services = app.extensions["cadreflow"]
    try:
        init_database(services)
        load_demo(services)
        for role in ROLES:
            users.create_user(services, role, PASSWORD, [role])
        audit_head = Actor("audit_head", frozenset({"audit_head"}))
        audit = next(c for c in cases.list_cases(services, audit_head, {"process": "departure_audit", "page": 1,
                                                                         "per_page": 10})["items"])
        task = next(t for t in cases.get_case(services, audit_head, audit["id"])["open_tasks"])
        tasks.complete_task(services, audit_head, task["id"], {"team_lead": "audit", "members": "审计一组"})
        return {"audit_case_id": audit["id"], "notice_case_id": _vetting_in_notice(services),
                "ineligible_case_id": next(c["id"] for c in cases.list_cases(
                    services, audit_head.__class__("org_dept", frozenset({"org_dept"})),
                    {"outcome": "ineligible", "page": 1, "per_page": 10})["items"])}
    finally:
        services.db.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ui")
    settings = {"DATABASE_URL": f"sqlite:///{folder / 'ui.sqlite3'}", "SECRET_KEY": TEST_SECRET_KEY,
                "DEADLINES": DEADLINES, "WORKER_POLL_SECONDS": 0.2}
    fixtures = _prepare(settings)
    env = {**os.environ, **{f"CADREFLOW_{k}": v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}}
    port = free_port()
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log_path)
        yield Server(base, fixtures)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_up(base: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60  # a loaded machine (parallel test workers) starts slowly
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(base + "/login", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make browser)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Any, server: Server) -> Iterator[Any]:
    """Open pages in fresh browser contexts (each its own cookies), desktop-sized at first."""
    contexts = []

    def open_page() -> Any:
        context = browser.new_context(base_url=server.base, viewport={"width": WIDTHS[0], "height": 900},
                                      locale="zh-CN", timezone_id="Asia/Shanghai", reduced_motion="reduce",
                                      accept_downloads=True)
        context.set_default_timeout(30_000)  # a loaded 2-core host drew a diagram in more than 15 s
        contexts.append(context)
        page = context.new_page()
        if SLOW:
            _slow_down(context, page, *SLOW)
        return page

    yield open_page
    for context in contexts:
        if SLOW:
            context.unroute_all(behavior="ignoreErrors")
        context.close()


def _slow_down(context: Any, page: Any, cpu_rate: int, kb_per_second: int) -> None:
    """A slow machine: the CPU slowed, pages delivered in small pieces (static files fetched unthrottled)."""
    context.route(lambda url: "/assets/" in url or "/static/" in url,
                  lambda route: route.fulfill(response=route.fetch()))
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu_rate})
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
                                                  "downloadThroughput": kb_per_second * 1024,
                                                  "uploadThroughput": kb_per_second * 1024})


@pytest.fixture
def page(new_page: Any) -> Any:
    return new_page()


def _vetting_in_notice(services: Any) -> int:
    """A vetting of 陈静 (c006) through its opinions and the head's approval: in its public notice."""
    org, head = Actor("org_dept", frozenset({"org_dept"})), Actor("org_head", frozenset({"org_head"}))
    case = cases.start_case(services, org, "pre_appointment_vetting", "c006",
                            {"proposed_post": "县审计局副局长", "selection_method": "competitive"})
    answers = {"democratic_evaluation": {"votes_approve": 38, "votes_basic": 4, "votes_disapprove": 1},
               "org_head_review": {"decision": "approve"}}
    while case["open_tasks"]:
        task = case["open_tasks"][0]
        actor = head if task["role"] == "org_head" else org
        tasks.complete_task(services, actor, task["id"], answers.get(task["element_id"], {"opinion": "positive"}))
        case = cases.get_case(services, org, case["id"])
    return case["id"]


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form, as a person would."""
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector(".user-name")


def settle(page: Any) -> None:
    """Let fonts load and layout, resize handlers and chart redraws finish (two animation frames)."""
    page.evaluate("() => document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(r))))")


def shoot(page: Any, name: str) -> None:
    """Full-page screenshots at each width; at every width the page must not scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state()  # the whole page, not what was parsed when the last click returned
    original = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        settle(page)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {width}px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(original)
    settle(page)
