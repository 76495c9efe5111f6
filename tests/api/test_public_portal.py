"""The public portal's JSON (/public): reports with a proof of work, tracking by code and key, public
notices and objections, bounds (rate, size, plain text), and the reporter's contact kept confidential."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from service.config import AT_LEAST
from service.db.models import Case, Task
from service.errors import TooManyAttempts, Unavailable
from service.ratelimit import Throttle, address_key
from service.usecases import incidents, portal, proof, public_posts, tracker
from service.usecases.check import check_cases
from service.usecases.context import Actor
from tests.api.support import (
    TIMER_WAIT,
    app_from_template,
    assert_error,
    fire_after_deadline,
    hold_in_incident,
    make_api,
    start_vetting,
    vetting_to_notice,
)

REPORT = {"subject_name": "张三", "subject_unit": "县交通局局长", "category": "inaction",
          "content": "对群众反映的道路问题长期不予处理。", "contact": "13800000000"}


def solved(client) -> dict[str, str]:
    """A fresh challenge, solved in Python as the browser's script does."""
    challenge = client.get("/public/challenge").json
    return {"pow_challenge": challenge["challenge"],
            "pow_nonce": proof.solve(challenge["challenge"], challenge["bits"])}


def report(client, **data):
    return client.post("/public/reports", json={**REPORT, **data, **solved(client)})


def triage_and_reply(api, case_id, **decision):
    api.complete(case_id, "triage_report", **decision)
    return api.complete(case_id, "reply_to_reporter", reply="经查，已启动问责程序。")


def case_of(api, code):
    cases = api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["items"]
    return next(c for c in cases if c["data"]["content"].startswith(REPORT["content"][:5])) if code else None


def test_a_report_is_tracked_by_code_and_key_until_the_reply(api, cadre):
    client = api.client
    response = report(client)
    assert response.status_code == 201, response.json
    handed = response.json
    assert set(handed) == {"tracking_code", "query_key"}
    tracked = client.get(f"/public/reports/{handed['tracking_code']}", query_string={"key": handed["query_key"]})
    assert tracked.status_code == 200
    assert tracked.json["status"] == "received" and "reply" not in tracked.json
    assert not {"case_id", "id", "data", "contact", "cadre_id"} & set(tracked.json)
    case = case_of(api, handed["tracking_code"])
    assert case["data"]["channel"] == "web" and case["cadre_id"] is None
    api.complete(case["id"], "triage_report", decision="accountability", cadre_id="c1")
    tracked = client.get(f"/public/reports/{handed['tracking_code']}", query_string={"key": handed["query_key"]})
    assert tracked.json["status"] == "processing" and "reply" not in tracked.json
    api.complete(case["id"], "reply_to_reporter", reply="经查，已启动问责程序。")
    tracked = client.get(f"/public/reports/{handed['tracking_code']}", query_string={"key": handed["query_key"]})
    assert (tracked.json["status"], tracked.json["reply"]) == ("replied", "经查，已启动问责程序。")
    child = api.case(api.case(case["id"])["child_case_ids"][0])
    assert (child["process"], child["data"]["source"]) == ("accountability", "web")


def test_a_report_whose_case_is_in_incident_is_still_being_handled(api, services, cadre):
    """A failed automatic step holds the case; the reporter is told it is received or processing, not closed."""
    handed = report(api.client).json
    case_id = case_of(api, handed["tracking_code"])["id"]
    hold_in_incident(services, case_id)
    tracked = api.client.get(f"/public/reports/{handed['tracking_code']}", query_string={"key": handed["query_key"]})
    assert tracked.json["status"] == "received"


def test_a_wrong_or_missing_key_is_like_an_unknown_code(api, cadre):
    handed = report(api.client).json
    code = handed["tracking_code"]
    for query in ({"key": "wrong"}, {}, {"key": handed["query_key"] + "x"}):
        assert_error(api.client.get(f"/public/reports/{code}", query_string=query), 404)
    assert_error(api.client.get("/public/reports/JBNOTACODE", query_string={"key": handed["query_key"]}), 404)


def test_the_key_may_come_in_a_header_so_no_proxy_logs_it(api, cadre):
    """A reverse proxy logs each request's URL, query and all (nginx's default log format): a key in
    `?key=` lets whoever reads those logs follow the report and read the reply. The key may come in the
    `X-Query-Key` header instead, which no log keeps; a wrong one there is the same 404."""
    handed = report(api.client).json
    url = f"/public/reports/{handed['tracking_code']}"
    tracked = api.client.get(url, headers={"X-Query-Key": handed["query_key"]})
    assert tracked.status_code == 200 and tracked.json["status"] == "received"
    assert_error(api.client.get(url, headers={"X-Query-Key": "wrong"}), 404)
    assert_error(api.client.get(url, headers={"X-Query-Key": "wrong"}, query_string={"key": handed["query_key"]}),
                 404)  # the header, when sent, is the key: never two guesses in one request


def test_anonymous_reports_are_accepted(api, cadre):
    data = {**REPORT, **solved(api.client)}
    data.pop("contact")
    assert api.client.post("/public/reports", json=data).status_code == 201


@pytest.mark.parametrize(("change", "field"), [
    ({"content": ""}, "content"),
    ({"content": "x" * 20_001}, "content"),
    ({"subject_name": "张" * 101}, "subject_name"),  # docs/api.md: a name at most 100, a unit and a contact 200
    ({"subject_unit": "局" * 201}, "subject_unit"),
    ({"contact": "1" * 201}, "contact"),
    ({"content": "请看 <script>alert(1)</script>"}, "content"),
    ({"subject_name": "<b>张三</b>"}, "subject_name"),
    ({"content": "&lt;img&gt;"}, "content"),
    ({"category": "gossip"}, "category"),
    ({"subject_unit": 12}, "subject_unit"),
    ({"extra": "x"}, "extra"),
])
def test_bad_reports_are_refused_with_the_field(api, change, field):
    assert_error(report(api.client, **change), 422, fields={field})
    assert api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["total"] == 0


@pytest.mark.parametrize(("change", "field"), [
    # U+202E shows what follows reversed: the triage inbox would read 张三（县交通局局长）.
    ({"subject_name": "张三\u202e长局局通交县"}, "subject_name"),
    ({"subject_unit": "县交通局\u2067局长"}, "subject_unit"),
    ({"content": "经查属实\u202d"}, "content"),
    ({"content": "道路问题\x1b[2J\x07"}, "content"),  # a terminal escape and a bell
    ({"contact": "138\x0b0000\x85"}, "contact"),  # C0 and C1 controls
    ({"subject_name": "张三\n李四"}, "subject_name"),  # one line: a name, a unit and a contact
    ({"contact": "13800000000\r\n另有隐情"}, "contact"),
    ({"subject_unit": "县交通局\u2028局长"}, "subject_unit"),
    ({"content": "挪用公款 3\u200f-5 万元"}, "content"),  # RLM: shown as 挪用公款 35- 万元
    ({"contact": "138\u200e0000\u061c1234"}, "contact"),  # LRM and the Arabic letter mark
])
def test_invisible_controls_are_refused_with_the_field(api, change, field):
    """Characters that change how a report shows to the officer triaging it without being seen (controls, bidi
    overrides), and line breaks in the one-line fields: 422 naming the field, nothing stored."""
    assert_error(report(api.client, **change), 422, fields={field})
    assert api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["total"] == 0


@pytest.mark.parametrize("blank", ["\u200b", "\ufeff\u2060", " \u200b\u3000\u200d "])
def test_a_required_field_of_invisible_characters_only_is_empty(api, blank):
    """Zero-width spaces and joiners pass `str.strip`: a report naming nobody would reach the inbox as （举报对象）."""
    assert_error(report(api.client, subject_name=blank, content=blank), 422, fields={"subject_name", "content"})
    assert api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["total"] == 0


def test_line_breaks_and_tabs_are_kept_in_the_content(api, cadre):
    content = "一、时间：2024年5月\n二、经过：\t长期不予处理\r\n三、联系人见下"
    assert report(api.client, content=content, subject_name=" 张三\n").status_code == 201
    case = api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["items"][0]
    assert (case["data"]["content"], case["data"]["subject_name"]) == (content, "张三")


def test_twenty_thousand_characters_are_accepted(api):
    assert report(api.client, content="举" * 20_000).status_code == 201


def test_the_smallest_body_limit_allowed_takes_the_longest_report(template, tmp_path):
    """PUBLIC_MAX_BODY at its floor still takes a report of 20,000 characters from outside the BMP with every
    other field at its longest, each character sent as a JSON surrogate pair (12 bytes)."""
    app = app_from_template(template, tmp_path / "small_body", PUBLIC_MAX_BODY=AT_LEAST["PUBLIC_MAX_BODY"])
    try:
        client = app.test_client()
        longest = {**REPORT, "subject_name": "𠀀" * portal.MAX_NAME, "subject_unit": "𠀀" * portal.MAX_UNIT,
                   "contact": "𠀀" * portal.MAX_CONTACT, "content": "𠀀" * portal.MAX_CONTENT, **solved(client)}
        body = json.dumps(longest, ensure_ascii=True)
        assert len(body) > 240_000
        response = client.post("/public/reports", data=body, content_type="application/json")
        assert response.status_code == 201, response.json
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_bodies_over_a_megabyte_are_413(api):
    body = b'{"content": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = api.client.post("/public/reports", data=body, content_type="application/json")
    assert response.status_code == 413


def test_the_proof_of_work_is_required_checked_and_single_use(api):
    client = api.client
    assert_error(client.post("/public/reports", json=REPORT), 400, "proof_of_work")
    work = solved(client)
    assert_error(client.post("/public/reports", json={**REPORT, "pow_challenge": work["pow_challenge"],
                                                      "pow_nonce": "not-a-solution"}), 400, "proof_of_work")
    forged = work["pow_challenge"].split(".")[0] + ".AAAA"
    assert_error(client.post("/public/reports", json={**REPORT, "pow_challenge": forged,
                                                      "pow_nonce": work["pow_nonce"]}), 400, "proof_of_work")
    assert client.post("/public/reports", json={**REPORT, **work}).status_code == 201
    assert_error(client.post("/public/reports", json={**REPORT, **work}), 400, "proof_of_work")
    header = {"X-Proof-Of-Work": "{pow_challenge}:{pow_nonce}".format(**solved(client))}
    assert client.post("/public/reports", json=REPORT, headers=header).status_code == 201


def test_an_expired_challenge_is_refused():
    challenge = proof.issue("k" * 40, 4, 60, now=1000.0)["challenge"]
    nonce = proof.solve(challenge, 4)
    with pytest.raises(proof.ProofRefused):
        proof.verify("k" * 40, __import__("limits").storage.MemoryStorage(), challenge, nonce, 4, 60, now=2000.0)


def test_per_address_rate_limit(api):
    client = api.client
    statuses = [report(client, content=f"第{i}次举报").status_code
                for i in range(21)]
    assert statuses[:20] == [201] * 20 and statuses[20] == 429
    response = report(client)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    other = client.post("/public/reports", json={**REPORT, **solved(client)},
                        environ_overrides={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 201


def test_the_contact_is_read_only_by_discipline_roles(api, cadre):
    report(api.client)
    case = case_of(api, "x")
    api.complete(case["id"], "triage_report", decision="accountability", cadre_id="c1")
    for role in ("discipline", "discipline_head", "admin"):
        assert api.get(f"/api/cases/{case['id']}", as_=role).json["data"]["contact"] == "13800000000"
    child_id = api.case(case["id"])["child_case_ids"][0]
    for role in ("committee", "discipline"):
        child = api.get(f"/api/cases/{child_id}", as_=role)
        assert child.status_code == 200 and "13800000000" not in child.get_data(as_text=True)
    assert_error(api.get(f"/api/cases/{case['id']}", as_="committee"), 404)
    services = api.client.application.extensions["cadreflow"]
    head = Actor("discipline_head", frozenset({"discipline_head"}))
    assert "13800000000" not in tracker.cases_csv(services, head, {"process": "public_report"})


def test_notices_list_vetting_cases_in_their_public_notice(api, cadre):
    assert api.client.get("/public/notices").json == []
    case_id = vetting_to_notice(api)
    notices = api.client.get("/public/notices").json
    assert len(notices) == 1
    assert set(notices[0]) == {"id", "cadre_name", "unit", "current_post", "proposed_post", "ends_on"}
    assert (notices[0]["id"], notices[0]["proposed_post"]) == (case_id, "县发改局局长")


def test_a_notice_ends_on_the_countys_date(api, cadre):
    """`ends_on` is the day in TIMEZONE (Asia/Shanghai): a period ending 17:00 UTC ends the next day there."""
    case_id = vetting_to_notice(api)
    services = api.client.application.extensions["cadreflow"]
    with services.db.unit_of_work() as session:
        session.execute(update(Case).where(Case.id == case_id)
                        .values(next_timer_due=datetime(2099, 3, 1, 17, 0, tzinfo=UTC)))
    assert [n["ends_on"] for n in api.client.get("/public/notices").json] == ["2099-03-02"]


def test_an_objection_reaches_the_vetting_case_and_ends_the_notice(api, cadre):
    case_id = vetting_to_notice(api)
    client = api.client
    response = client.post(f"/public/notices/{case_id}/objections",
                           json={"content": "该同志存在违规经商问题", "contact": "13988776655", **solved(client)})
    assert response.status_code == 201, response.json
    handed = response.json
    case = api.case(case_id)
    assert [t["element_id"] for t in case["open_tasks"]] == ["verify_objection"]
    assert case["data"]["objection"]["report"] == "该同志存在违规经商问题"
    # The objector's contact never enters the vetting case (a long number: a short one may occur in an id).
    assert "13988776655" not in str(api.get(f"/api/cases/{case_id}", as_="org_dept").json)
    assert client.get("/public/notices").json == []
    again = client.post(f"/public/notices/{case_id}/objections", json={"content": "再次反映", **solved(client)})
    assert_error(again, 409)
    tracked = client.get(f"/public/reports/{handed['tracking_code']}", query_string={"key": handed["query_key"]})
    assert tracked.status_code == 200 and tracked.json["status"] == "processing"


def test_an_objection_that_cannot_be_handed_out_leaves_the_notice_running(api, cadre, monkeypatch):
    """The objection and its tracking record (code, key, the objector's contact, the row the triage inbox lists)
    are written together or not at all: a failure while handing out must not leave the notice ended by an
    objection nobody can follow, whose contact is lost and which the inbox never shows."""
    case_id = vetting_to_notice(api)
    client = api.client

    def store_down(*_args, **_kwargs):
        raise Unavailable("the database cannot be reached (数据库暂时无法访问)")

    with monkeypatch.context() as patched:
        patched.setattr(portal, "_hand_out", store_down)
        failed = client.post(f"/public/notices/{case_id}/objections",
                             json={"content": "该同志存在违规经商问题", "contact": "13988776655", **solved(client)})
    assert_error(failed, 503)
    assert [n["id"] for n in client.get("/public/notices").json] == [case_id]
    assert "objection" not in api.case(case_id)["data"]
    again = client.post(f"/public/notices/{case_id}/objections",
                        json={"content": "该同志存在违规经商问题", "contact": "13988776655", **solved(client)})
    assert again.status_code == 201, again.json
    services = api.client.application.extensions["cadreflow"]
    inbox = portal.triage_inbox(services, Actor("discipline", frozenset({"discipline"})))
    assert [(o["case_id"], o["contact"]) for o in inbox["objections"]] == [(case_id, "13988776655")]


def test_objections_to_unknown_or_other_cases_are_404(api, cadre):
    client = api.client
    assert_error(client.post("/public/notices/999/objections", json={"content": "x", **solved(client)}), 404)
    report(client)
    other = case_of(api, "x")["id"]
    assert_error(client.post(f"/public/notices/{other}/objections", json={"content": "x", **solved(client)}), 404)


def test_the_portal_needs_no_login_and_sends_no_store(api):
    for path in ("/public/notices", "/public/challenge"):
        response = api.client.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_a_challenge_stays_spent_whenever_it_is_replayed():
    """The spent mark does not depend on how long the challenge had left when it was used."""
    storage = __import__("limits").storage.MemoryStorage()
    challenge = proof.issue("k" * 40, 4, 600, now=1000.0)["challenge"]
    nonce = proof.solve(challenge, 4)
    proof.verify("k" * 40, storage, challenge, nonce, 4, 600, now=1000.0)
    with pytest.raises(proof.ProofRefused):
        proof.verify("k" * 40, storage, challenge, nonce, 4, 600, now=1300.0)


def test_a_non_ascii_proof_is_refused_as_invalid(api, cadre):
    """A challenge or nonce that is no ASCII (ours always are) is an invalid proof (400), never a 500."""
    client = api.client
    work = solved(client)
    forged = work["pow_challenge"].split(".")[0] + ".é"
    assert_error(client.post("/public/reports", json={**REPORT, "pow_challenge": forged, "pow_nonce": "1"}),
                 400, "proof_of_work")
    assert_error(client.post("/public/reports", json={**REPORT, "pow_challenge": work["pow_challenge"],
                                                      "pow_nonce": "é"}), 400, "proof_of_work")
    assert_error(client.post("/public/reports", json=REPORT, headers={"X-Proof-Of-Work": "a.\xff:1"}),
                 400, "proof_of_work")
    case_id = vetting_to_notice(api)
    assert_error(client.post(f"/public/notices/{case_id}/objections",
                             json={"content": "x", "pow_challenge": forged, "pow_nonce": "1"}), 400, "proof_of_work")
    assert client.get("/public/notices").json[0]["id"] == case_id  # the notice runs on


def bad_json(client, field: str, raw: str) -> str:
    """A report with a solved challenge whose `field` is `raw` JSON text (what json.dumps would never write)."""
    return json.dumps({**REPORT, **solved(client), field: "@@"}).replace('"@@"', raw)


BAD_JSON = {
    "surrogate nonce": lambda client: bad_json(client, "pow_nonce", '"\\udc00"'),
    "surrogate key": lambda client: bad_json(client, "x", '"x", "\\ud800": "x"'),
    "surrogate value": lambda client: bad_json(client, "subject_name", '"\\ud800x"'),
    "NaN": lambda client: bad_json(client, "content", "NaN"),
    "deep": lambda client: "[" * 100_000,
}


@pytest.mark.parametrize("make", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_json_that_cannot_be_stored_is_400(api, cadre, make):
    """Lone surrogates (in a value or a key), NaN and too deep nesting: 400 like the staff API, nothing stored."""
    client = api.client
    case_id = vetting_to_notice(api)
    for url in ("/public/reports", f"/public/notices/{case_id}/objections"):
        assert_error(client.post(url, data=make(client), content_type="application/json"), 400)
    assert api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["total"] == 0
    assert client.get("/public/notices").json[0]["id"] == case_id


@pytest.mark.parametrize("code", ["JB\x00", "JB%00", "JBABCDEFGH2\x00", "jbabcdefgh23 ", "JB好ABCDEFGH"])
def test_a_code_that_is_no_code_is_not_found(api, cadre, code):
    """A NUL (PostgreSQL refuses it in text) or any character a code never has: 404 like an unknown code."""
    assert_error(api.client.get(f"/public/reports/{code}", query_string={"key": "x"}), 404)


def test_objections_reveal_no_vetting_case_before_its_notice(api, cadre):
    """A vetting case not yet on notice answers 404 like an unknown id (and the message is the same): the
    public learns of a candidate only from the notice."""
    client = api.client
    unknown = assert_error(client.post("/public/notices/999/objections", json={"content": "x", **solved(client)}),
                           404)
    case_id = start_vetting(api)["id"]
    early = assert_error(client.post(f"/public/notices/{case_id}/objections",
                                     json={"content": "x", **solved(client)}), 404)
    assert early["message"] == unknown["message"].replace("999", str(case_id))
    assert api.case(case_id)["status"] == "open"


def test_an_objection_after_the_period_is_409(fast_api, fast_services):
    fast_api.create_cadre("c1")
    case_id = vetting_to_notice(fast_api)
    assert fire_after_deadline(fast_services) >= 1
    client = fast_api.client
    assert client.get("/public/notices").json == []
    assert_error(client.post(f"/public/notices/{case_id}/objections", json={"content": "x", **solved(client)}), 409)


def test_a_notice_whose_period_ran_out_is_not_listed_before_a_worker_fires_its_timer(fast_api, fast_services):
    """The period ends at its due time, not when a worker next polls (or comes back up): till then the notice is
    no longer listed, and an objection is the 409 of a period that is over, not the 404 of an unknown notice."""
    fast_api.create_cadre("c1")
    case_id = vetting_to_notice(fast_api)
    client = fast_api.client
    time.sleep(TIMER_WAIT)  # past the PT1S notice; no worker fires it
    assert client.get("/public/notices").json == []
    assert f"/notices/{case_id}/objections" not in client.get("/notices").get_data(as_text=True)  # the page too
    assert_error(client.post(f"/public/notices/{case_id}/objections", json={"content": "x", **solved(client)}), 409)
    assert any(e["task"] == "public_notice_expired" for e in fast_api.history(case_id) if "task" in e)


def test_an_ipv6_client_is_counted_by_its_64(api):
    """Rotating through one's /64 gains nothing: PUBLIC_POST_LIMIT counts the network; another /64 is another."""
    client = api.client
    statuses = [client.post("/public/reports", json={**REPORT, "content": f"第{i}次举报", **solved(client)},
                            environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{i + 1:x}"}).status_code
                for i in range(21)]
    assert statuses[:20] == [201] * 20 and statuses[20] == 429
    other = client.post("/public/reports", json={**REPORT, **solved(client)},
                        environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    assert other.status_code == 201


NETWORK_LIMIT = 10


@pytest.fixture
def small_network_api(template, tmp_path):
    """An app whose IPv6 /48 may send 10 public POSTs per window (PUBLIC_NETWORK_POST_LIMIT, the fewest allowed)."""
    app = app_from_template(template, tmp_path / "network", PUBLIC_NETWORK_POST_LIMIT=NETWORK_LIMIT)
    yield make_api(app, template)
    app.extensions["cadreflow"].db.dispose()


def test_rotating_through_the_64s_of_one_48_gains_nothing(small_network_api):
    """A tunnel broker gives anyone a /48 for free: 65,536 /64s. Each /64 is one address for PUBLIC_POST_LIMIT,
    but the whole /48 may post PUBLIC_NETWORK_POST_LIMIT times; another /48, and IPv4, are not held by it."""
    client = small_network_api.client
    statuses = [client.post("/public/reports", json={**REPORT, "content": f"第{i}次举报", **solved(client)},
                            environ_base={"REMOTE_ADDR": f"2001:db8:7:{i:x}::1"}).status_code
                for i in range(NETWORK_LIMIT + 1)]
    assert statuses == [201] * NETWORK_LIMIT + [429]
    assert int(client.post("/public/reports", json={**REPORT, **solved(client)},
                           environ_base={"REMOTE_ADDR": "2001:db8:7:ffff::9"}).headers["Retry-After"]) > 0
    for elsewhere in ("2001:db8:8::1", "198.51.100.20", "::ffff:198.51.100.21"):
        assert client.post("/public/reports", json={**REPORT, **solved(client)},
                           environ_base={"REMOTE_ADDR": elsewhere}).status_code == 201, elsewhere


def test_a_post_refused_for_its_network_uses_up_none_of_its_addresss_allowance(small_network_api):
    """All or nothing: the /64 refused because its /48 is full keeps its own PUBLIC_POST_LIMIT."""
    services = small_network_api.client.application.extensions["cadreflow"]
    for i in range(NETWORK_LIMIT):
        public_posts.count_public_post(services, f"2001:db8:9:{i:x}::1")
    with pytest.raises(TooManyAttempts):
        public_posts.count_public_post(services, "2001:db8:9:aa::1")
    own = Throttle(services.rate_storage, "public_post", int(services.settings["PUBLIC_POST_LIMIT"]), 600)
    for _ in range(int(services.settings["PUBLIC_POST_LIMIT"])):
        assert own.take(address_key("2001:db8:9:aa::1")) == 0  # its whole allowance is still there


@pytest.fixture
def surge_api(template, tmp_path):
    """An app whose portal counts as flooded after 3 reports and objections from anyone within the hour."""
    app = app_from_template(template, tmp_path / "surge", PUBLIC_POW_BITS=4, PUBLIC_SURGE_EXTRA_BITS=4,
                            PUBLIC_SURGE_POSTS=3, PUBLIC_POST_LIMIT=1000)
    yield make_api(app, template)
    app.extensions["cadreflow"].db.dispose()


def test_a_flood_from_many_addresses_makes_the_work_harder_and_shuts_out_nobody(surge_api):
    """No address is over its limit, yet the world has sent PUBLIC_SURGE_POSTS: challenges ask for more work, one
    handed out easier before the surge is refused as such (400, a fresh one then works), and reports still go in."""
    client = surge_api.client
    assert client.get("/public/challenge").json["bits"] == 4
    hoarded = solved(client)  # fetched and solved before the flood, kept for it
    for i in range(3):
        assert client.post("/public/reports", json={**REPORT, **solved(client)},
                           environ_base={"REMOTE_ADDR": f"198.51.100.{i + 40}"}).status_code == 201
    assert client.get("/public/challenge").json["bits"] == 8
    assert 'data-bits="8"' in client.get("/report").get_data(as_text=True)
    stale = client.post("/public/reports", json={**REPORT, **hoarded}, environ_base={"REMOTE_ADDR": "198.51.100.50"})
    assert "难度已提高" in assert_error(stale, 400)["message"]
    genuine = client.post("/public/reports", json={**REPORT, **solved(client)},
                          environ_base={"REMOTE_ADDR": "198.51.100.51"})
    assert genuine.status_code == 201


def test_a_surge_needs_the_proof_of_work_on(template, tmp_path):
    """With PUBLIC_POW_BITS 0 the operator turned the work off: a surge does not turn it back on."""
    app = app_from_template(template, tmp_path / "no-work", PUBLIC_POW_BITS=0, PUBLIC_SURGE_POSTS=1)
    try:
        client = app.test_client()
        for i in range(3):
            assert client.post("/public/reports", json=REPORT,
                               environ_base={"REMOTE_ADDR": f"198.51.100.{i + 60}"}).status_code == 201
        assert client.get("/public/challenge").json["bits"] == 0
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_report_past_its_deadline_is_overdue_in_the_triage_inbox_as_in_the_task_list(api, services, cadre):
    """The triage task's deadline passed and no worker has fired its timer yet (or its case is held): the task list
    calls it overdue, and so do the triage inbox and the report's page, not only once the timer marked it."""
    case_id = case_of(api, report(api.client).json["tracking_code"])["id"]
    with services.db.unit_of_work() as session:
        session.execute(update(Task).where(Task.case_id == case_id, Task.element_id == "triage_report")
                        .values(due_at=datetime.now(UTC) - timedelta(hours=1)))
    assert api.open_task(case_id, "triage_report")["overdue"] is True
    inspector = Actor("discipline", frozenset({"discipline"}))
    row = next(r for r in portal.triage_inbox(services, inspector)["reports"]["items"] if r["id"] == case_id)
    assert row["overdue"] is True
    assert [t["overdue"] for t in portal.report_file(services, inspector, case_id)["open_tasks"]] == [True]


def test_a_report_held_in_an_incident_stays_in_the_triage_inbox(api, services, cadre):
    """A failed automatic step holds the report's case: it is not over (queries.unfinished), and the triage inbox
    still lists it, with its state, instead of losing it until someone retries it from the tracker."""
    case_id = case_of(api, report(api.client).json["tracking_code"])["id"]
    hold_in_incident(services, case_id)
    inspector = Actor("discipline", frozenset({"discipline"}))
    rows = portal.triage_inbox(services, inspector)["reports"]["items"]
    assert [(r["id"], r["status"]) for r in rows] == [(case_id, "incident")]


def test_a_notice_whose_case_is_in_incident_is_held_until_the_repair(api, services, cadre):
    """A vetting case held in incident takes no message (no case in incident does: its state is what an admin
    repairs), so its notice is not listed, and an objection is a 409 saying to try again later, not the 404 of an
    unknown notice; nothing is written. Once the admin's retry reopens the case within the period, the notice is
    listed again and takes objections."""
    case_id = vetting_to_notice(api)
    client = api.client
    hold_in_incident(services, case_id)
    assert client.get("/public/notices").json == []
    refused = client.post(f"/public/notices/{case_id}/objections",
                          json={"content": "该同志存在违规经商问题", **solved(client)})
    message = assert_error(refused, 409)["message"]
    assert "稍后" in message and "later" in message, message
    assert "objection" not in api.case(case_id)["data"]
    inbox = portal.triage_inbox(services, Actor("discipline", frozenset({"discipline"})))
    assert inbox["objections"] == []
    retried = api.post(f"/api/cases/{case_id}/retry", as_="admin")
    assert retried.status_code == 200 and retried.json["status"] == "open", retried.json
    assert [n["id"] for n in client.get("/public/notices").json] == [case_id]
    taken = client.post(f"/public/notices/{case_id}/objections",
                        json={"content": "该同志存在违规经商问题", **solved(client)})
    assert taken.status_code == 201, taken.json


def test_a_notice_in_incident_whose_period_ran_out_is_over(api, services, cadre):
    """Held past the end of its period (its timer not fired while held), the notice is over, not to be tried later."""
    case_id = vetting_to_notice(api)
    hold_in_incident(services, case_id)
    with services.db.unit_of_work() as session:
        session.execute(update(Case).where(Case.id == case_id).values(
            next_timer_due=datetime.now(UTC) - timedelta(minutes=1)))
    refused = api.client.post(f"/public/notices/{case_id}/objections", json={"content": "x", **solved(api.client)})
    message = assert_error(refused, 409)["message"]
    assert "公示期已结束" in message and "later" not in message, message


def _notice_due(services, case_id: int) -> datetime:
    with services.db.unit_of_work(write=False) as session:
        return session.get(Case, case_id).next_timer_due


def test_a_notice_held_in_incident_gets_the_days_it_was_held_back_at_the_retry(api, services, cadre):
    """While held, the notice is off the list and takes no objection, so the public would lose the days the
    repair takes out of its 5 (seed 三(三): opinions sought from the public before appointment). The admin's
    retry moves the period's end later by the time the case was held, through the engine, and says so in the
    retry's history entry; the notice is listed again until then."""
    case_id = vetting_to_notice(api)
    due = _notice_due(services, case_id)
    hold_in_incident(services, case_id)
    time.sleep(1.2)
    assert api.post(f"/api/cases/{case_id}/retry", as_="admin").status_code == 200
    moved = _notice_due(services, case_id)
    assert timedelta(seconds=1.2) <= moved - due < timedelta(minutes=1), (due, moved)
    retry = [e for e in api.history(case_id) if e["action"] == "retry"][-1]
    assert retry["detail"]["notice_until"] == moved.isoformat() and retry["detail"]["notice_held_seconds"] >= 1.2
    assert [n["ends_on"] for n in api.client.get("/public/notices").json] == [
        moved.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()]
    assert check_cases(services)[1] == []  # the later end is the engine's own timer: nothing for check to name


def test_a_notice_held_past_its_end_but_held_within_its_period_is_tried_later(api, services, cadre):
    """Held 10 minutes ago with a minute of its period left then, the notice's end has passed by the clock, but the
    retry gives the held time back: an objection meanwhile is the 409 asking to try again later, not the period's."""
    case_id = vetting_to_notice(api)
    hold_in_incident(services, case_id)
    now = datetime.now(UTC)
    with services.db.unit_of_work() as session:
        case = session.get(Case, case_id)
        session.execute(update(Case).where(Case.id == case_id).values(
            next_timer_due=now - timedelta(minutes=1),
            incident={**case.incident, "held_since": (now - timedelta(minutes=10)).isoformat()}))
    refused = api.client.post(f"/public/notices/{case_id}/objections", json={"content": "x", **solved(api.client)})
    message = assert_error(refused, 409)["message"]
    assert "稍后" in message and "公示期已结束" not in message, message


def test_the_workers_retry_gives_a_held_notice_its_time_back_too(api, services, cadre):
    """The worker's automatic retry of a held notice moves its end as an admin's does."""
    case_id = vetting_to_notice(api)
    due = _notice_due(services, case_id)
    hold_in_incident(services, case_id)
    time.sleep(1.2)
    with services.db.unit_of_work() as session:
        session.execute(update(Case).where(Case.id == case_id).values(retry_at=datetime.now(UTC)))
    assert incidents.retry_due(services) == 1
    assert _notice_due(services, case_id) - due >= timedelta(seconds=1.2)
    retry = [e for e in api.history(case_id) if e["action"] == "retry"][-1]
    assert retry["detail"]["automatic"] and retry["detail"]["notice_held_seconds"] >= 1.2


def test_a_hold_renewed_by_a_failed_retry_keeps_its_start(api, services, cadre):
    """A failed retry holds the case anew; the time given back counts from the first hold, not from the retry."""
    case_id = vetting_to_notice(api)
    hold_in_incident(services, case_id)
    first = api.case(case_id)["incident"]["held_since"]
    time.sleep(0.2)
    hold_in_incident(services, case_id)
    assert api.case(case_id)["incident"]["held_since"] == first
