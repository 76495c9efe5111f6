"""E-mail of notifications against a real SMTP server (aiosmtpd): per event, the digest, a server that is down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from service import create_app
from service.db.models import MailItem, Notification
from service.mail import RecordingMailer
from service.usecases import mailing, reminders
from service.usecases.reminders import Reminders
from tests.api.support import app_from_template, hold_in_incident, make_api, start_accountability
from tests.conftest import make_settings
from tests.net import free_port
from tests.service.test_concurrency import race
from tests.smtp import SmtpServer, smtp_server

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def mailing_app(template, folder: Path, server: SmtpServer):
    return app_from_template(template, folder, **server.settings())


@pytest.fixture
def world(template, tmp_path, smtp):
    """An app that mails to the test server, its API, and discipline and discipline2 with addresses."""
    app = mailing_app(template, tmp_path / "mail", smtp)
    api = make_api(app, template)
    api.create_cadre("c1")
    for name in ("discipline", "discipline2"):
        assert api.patch(f"/api/users/{name}", json={"email": f"{name}@example.gov.cn"}).status_code == 200
    yield app.extensions["cadreflow"], api
    app.extensions["cadreflow"].db.dispose()


def mails(services) -> list[MailItem]:
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(MailItem).order_by(MailItem.id)))


def test_a_new_task_is_notified_in_the_app_and_by_mail_after_the_commit(world, smtp):
    """Starting a case writes the notification at once; the worker then mails each holder with an address
    (not multi, who has none): Chinese subject and body, English below, the task's link; never twice."""
    services, api = world
    case = start_accountability(api)
    task = case["open_tasks"][0]
    assert smtp.received == []  # the request never talks to the mail server
    Reminders(services).tick()
    got = sorted(smtp.received, key=lambda r: r.rcpt_tos)
    assert [r.rcpt_tos for r in got] == [["discipline2@example.gov.cn"], ["discipline@example.gov.cn"]]
    mail = next(r for r in got if r.rcpt_tos == ["discipline@example.gov.cn"])
    assert mail.message["To"] == "discipline@example.gov.cn" and mail.mail_from == "noreply@example.gov.cn"
    assert mail.subject.startswith(f"【干部监督】新任务：初步核实（问责，案件 #{case['id']}）")
    assert "New task: 初步核实 (accountability" in mail.subject
    body = mail.body
    link = f"https://cadreflow.example.gov.cn/tasks/{task['id']}"
    assert body.index("discipline，您好") < body.index(link) < body.index("Hello discipline") < body.rindex(link)
    assert "张三" not in body and "张三" not in mail.subject  # no cadre names leave the building
    Reminders(services).tick()
    assert len(smtp.received) == 2
    assert [m.status for m in mails(services)] == ["sent", "sent"]


def test_the_digest_replaces_mails_per_event_with_one_a_day(world, smtp):
    """discipline chose the digest: no mail per event; one summary a day from MAIL_DIGEST_HOUR, listing its tasks."""
    services, api = world
    api.patch("/api/me/mail", as_="discipline", json={"mail_digest": True})
    ids = [start_accountability(api)["id"] for _ in range(2)]
    morning = datetime.now(SHANGHAI).replace(hour=9, minute=0)
    Reminders(services).tick(morning.replace(hour=6))  # before MAIL_DIGEST_HOUR, whatever the clock says
    assert {tuple(r.rcpt_tos) for r in smtp.received} == {("discipline2@example.gov.cn",)}
    smtp.received.clear()
    assert reminders.queue_digests(services, morning.replace(hour=7)) is None  # before MAIL_DIGEST_HOUR
    assert reminders.queue_digests(services, morning) == 1
    assert reminders.queue_digests(services, morning + timedelta(hours=3)) is None  # once a day
    assert mailing.deliver_due(services)
    [digest] = smtp.received
    assert digest.rcpt_tos == ["discipline@example.gov.cn"]
    assert digest.subject == ("【干部监督】每日待办汇总：2 项，逾期 0 项 | "
                              "CadreFlow daily summary: 2 open, 0 overdue")
    body = digest.body
    assert all(f"案件 #{i}" in body and f"case #{i}" in body for i in ids)
    assert body.index("您当前有 2 项待办任务") < body.index("You have 2 open task(s)")
    assert "https://cadreflow.example.gov.cn/inbox" in body
    assert reminders.queue_digests(services, morning + timedelta(days=1)) == 1  # the next day, again


def test_a_mail_server_that_is_down_delays_mail_and_loses_none(template, tmp_path):
    """With the server down the request still succeeds and the mail waits (attempt counted, error kept); once the
    server is up, the next try after the delay delivers it, once."""
    down = SmtpServer(free_port())  # not started: connections are refused
    app = mailing_app(template, tmp_path / "down", down)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    api.create_cadre("c1")
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn"})
    start_accountability(api)  # 201: asserted inside
    worker = Reminders(services)
    now = datetime.now(SHANGHAI)
    worker.tick(now)
    [item] = mails(services)
    assert (item.status, item.attempts, item.sent_at) == ("pending", 1, None) and item.last_error
    assert item.next_attempt_at >= now + mailing.FIRST_RETRY - timedelta(seconds=1)
    with smtp_server(down.port) as server:
        worker.tick(now + timedelta(seconds=10))  # still waiting for the retry
        assert server.received == []
        worker.tick(now + timedelta(seconds=40))
        assert [r.rcpt_tos for r in server.received] == [["discipline@example.gov.cn"]]
        worker.tick(now + timedelta(minutes=10))
        assert len(server.received) == 1
    [item] = mails(services)
    assert (item.status, item.attempts) == ("sent", 2)
    services.db.dispose()


def test_a_refused_recipient_is_given_up_and_the_others_still_go(world, smtp):
    """A permanent 550 for one address fails that mail for good; the next mails of the pass are still sent."""
    services, api = world
    smtp.refuse.add("discipline@example.gov.cn")
    start_accountability(api)
    Reminders(services).tick()
    assert [r.rcpt_tos for r in smtp.received] == [["discipline2@example.gov.cn"]]
    assert sorted(m.status for m in mails(services)) == ["failed", "sent"]
    Reminders(services).tick(datetime.now(SHANGHAI) + timedelta(hours=2))
    assert len(smtp.received) == 1


def test_a_server_refusing_the_sender_keeps_every_mail_for_later(world, smtp):
    """A 5xx for the sender (a relay that does not let MAIL_FROM through, a setting to fix) says nothing of any one
    mail: every mail waits and goes once the server takes the sender again, none is given up for it."""
    services, api = world
    smtp.refuse_sender = True
    start_accountability(api)
    Reminders(services).tick()
    assert smtp.received == [] and {m.status for m in mails(services)} == {"pending"}
    smtp.refuse_sender = False
    Reminders(services).tick(datetime.now(SHANGHAI) + timedelta(hours=2))
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["discipline2@example.gov.cn", "discipline@example.gov.cn"]
    assert {m.status for m in mails(services)} == {"sent"}


def test_retries_grow_and_end(services):
    """30 s after the first failure, doubling, at most an hour between tries."""
    assert [mailing.retry_delay(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_without_smtp_host_nothing_is_queued(services, api, cadre):
    """Mail off (no SMTP_HOST): notifications are marked skipped, the outbox stays empty."""
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn"})
    start_accountability(api)
    assert services.mailer is None
    Reminders(services).tick()
    assert mails(services) == []
    with services.db.unit_of_work(write=False) as session:
        statuses = set(session.scalars(select(Notification.mail_status)))
    assert statuses == {"skipped", None}  # discipline's (skipped), discipline2's and multi's (no address)


def test_two_workers_sending_at_once_send_each_mail_once(template, tmp_path):
    """Two workers (own engines, same database) delivering together: every mail goes exactly once."""
    app = app_from_template(template, tmp_path / "two")
    first = app.extensions["cadreflow"]
    second = create_app(make_settings(tmp_path / "two")).extensions["cadreflow"]
    first.mailer = second.mailer = recorder = RecordingMailer()
    api = make_api(app, template)
    api.create_cadre("c1")
    for name in ("discipline", "discipline2", "multi"):
        api.patch(f"/api/users/{name}", json={"email": f"{name}@example.gov.cn"})
    for _ in range(8):
        start_accountability(api)
    try:
        queued = race(partial(mailing.queue_event_mails, first), partial(mailing.queue_event_mails, second))
        assert sum(queued) == 24 and len(mails(first)) == 24, queued
        delivered = race(partial(mailing.deliver_due, first), partial(mailing.deliver_due, second))
        assert delivered == [True, True], delivered
        assert len(recorder.sent) == 24 and len({(m.to, m.subject) for m in recorder.sent}) == 24
        assert {m.status for m in mails(first)} == {"sent"}
    finally:
        first.db.dispose()
        second.db.dispose()


def test_a_mail_that_keeps_failing_is_given_up_after_the_last_attempt(template, tmp_path):
    """With MAIL_MAX_ATTEMPTS 3 and a server that always fails, the mail is tried 3 times, then marked failed."""
    app = app_from_template(template, tmp_path / "fail", MAIL_MAX_ATTEMPTS=3)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    services.mailer = RecordingMailer(failing=True)
    api.create_cadre("c1")
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn"})
    start_accountability(api)
    mailing.queue_event_mails(services)
    moment = datetime.now(SHANGHAI)
    for _ in range(5):
        mailing.deliver_due(services, moment)
        moment += timedelta(hours=2)
    [item] = mails(services)
    assert (item.status, item.attempts, services.mailer.sent) == ("failed", 3, [])
    services.db.dispose()


def test_a_mail_no_server_could_take_is_given_up_at_once_and_the_others_still_go(world, smtp):
    """A subject with a line break (queued before subjects were kept to one line) makes the mail library refuse the
    header: that mail fails for good with the reason, instead of jamming the queue at every pass."""
    services, api = world
    start_accountability(api)
    mailing.queue_event_mails(services)
    with services.db.unit_of_work() as session:
        first = session.scalars(select(MailItem).order_by(MailItem.id)).first()
        first.subject = "新任务\nBcc: evil@attacker.example"
    Reminders(services).tick()
    assert len(smtp.received) == 1 and "evil@attacker.example" not in str(smtp.received[0].message)
    stored = mails(services)
    assert [m.status for m in stored] == ["failed", "sent"] and "malformed" in stored[0].last_error


def test_a_task_name_with_line_breaks_is_mailed_on_one_line(world):
    services, _api = world
    notification = Notification(user_id=1, kind="new_task", task_id=None, text="新任务：核实\u2028抄送\n他人",
                                text_en="New task: check\r\nBcc: x")
    mail = mailing.notification_mail(services, notification, type("User", (), {"id": 1, "username": "u"})())
    assert mail.subject == "【干部监督】新任务：核实 抄送 他人 | CadreFlow: New task: check Bcc: x"


def test_a_mail_given_up_is_shown_to_the_operator_and_may_be_queued_again(template, tmp_path):
    """The server was down past MAIL_MAX_ATTEMPTS: `cadreflow mail-outbox` names the mail given up, to whom and why,
    and exits 1 (a monitor notices); once the server is back, `--retry-failed` queues it again and it goes."""
    app = app_from_template(template, tmp_path / "outbox", MAIL_MAX_ATTEMPTS=2)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    services.mailer = RecordingMailer(failing=True)
    api.create_cadre("c1")
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn"})
    start_accountability(api)
    mailing.queue_event_mails(services)
    moment = datetime.now(SHANGHAI)
    for _ in range(3):
        mailing.deliver_due(services, moment)
        moment += timedelta(hours=2)
    cli = app.test_cli_runner()
    shown = cli.invoke(args=["mail-outbox"])
    assert shown.exit_code == 1, shown.output
    [item] = mails(services)
    assert f"mail {item.id} to discipline (notification" in shown.output
    assert "failed after 2 attempt(s): the recording mailer was told to fail" in shown.output
    assert "pending 0, sent 0, failed 1, dropped 0" in shown.output
    services.mailer.failing = False
    again = cli.invoke(args=["mail-outbox", "--retry-failed"])
    assert again.exit_code == 0, again.output
    assert "1 failed mail(s) queued again" in again.output and "pending 1 (oldest queued" in again.output
    assert mailing.deliver_due(services)
    assert [m.to for m in services.mailer.sent] == ["discipline@example.gov.cn"]
    assert [(m.status, m.attempts) for m in mails(services)] == [("sent", 1)]
    services.db.dispose()


def test_a_server_refusing_the_sender_for_longer_than_the_retries_gives_no_mail_up(template, tmp_path, smtp):
    """MAIL_FROM refused for MAIL_MAX_ATTEMPTS tries and more (the relay's setting is fixed the next day): a refusal
    of this service, not of the mail, so each mail still waits and goes once the sender is taken."""
    app = app_from_template(template, tmp_path / "sender", MAIL_MAX_ATTEMPTS=2, **smtp.settings())
    services, api = app.extensions["cadreflow"], make_api(app, template)
    api.create_cadre("c1")
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn"})
    smtp.refuse_sender = True
    start_accountability(api)
    worker, moment = Reminders(services), datetime.now(SHANGHAI)
    for _ in range(5):
        worker.tick(moment)
        moment += timedelta(hours=2)
    assert smtp.received == [] and [m.status for m in mails(services)] == ["pending"]
    smtp.refuse_sender = False
    worker.tick(moment)
    assert [r.rcpt_tos for r in smtp.received] == [["discipline@example.gov.cn"]]
    assert [m.status for m in mails(services)] == ["sent"]
    services.db.dispose()


@pytest.mark.parametrize(("hours", "zh", "en"), [
    (24 * 31, "其中 0 项已逾期，1 项将在 31 天内到期：", "0 overdue, 1 due within 31 days."),
    (0, "其中 0 项已逾期：", "0 overdue."),
])
def test_the_digest_says_due_soon_as_notify_due_soon_hours_counts_it(template, tmp_path, hours, zh, en):
    """The digest counts "due soon" within NOTIFY_DUE_SOON_HOURS, and says that window, not always "within a day";
    with 0 (no due-soon notices) it says nothing of due soon."""
    app = app_from_template(template, tmp_path / "window", NOTIFY_DUE_SOON_HOURS=hours)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    services.mailer = RecordingMailer()
    api.create_cadre("c1")
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn", "mail_digest": True})
    start_accountability(api)
    assert reminders.queue_digests(services, datetime.now(SHANGHAI).replace(hour=9)) == 1
    [digest] = [m for m in mails(services) if m.kind == "digest"]
    assert zh in digest.body and en in digest.body, digest.body
    services.db.dispose()


def test_the_digest_leaves_out_the_tasks_of_a_case_held_as_an_incident(template, tmp_path):
    """As the inbox does: a held case's task waits for a retry and nobody can do it, so the daily summary neither
    counts nor lists it."""
    app = app_from_template(template, tmp_path / "held", NOTIFY_DUE_SOON_HOURS=0)
    services, api = app.extensions["cadreflow"], make_api(app, template)
    services.mailer = RecordingMailer()
    api.create_cadre("c1")
    api.patch("/api/users/discipline", json={"email": "discipline@example.gov.cn", "mail_digest": True})
    held, offered = start_accountability(api)["id"], start_accountability(api)["id"]
    hold_in_incident(services, held)
    assert reminders.queue_digests(services, datetime.now(SHANGHAI).replace(hour=9)) == 1
    [digest] = [m for m in mails(services) if m.kind == "digest"]
    assert "您当前有 1 项待办任务" in digest.body and f"案件 #{offered}" in digest.body, digest.body
    assert f"案件 #{held}" not in digest.body
    services.db.dispose()
