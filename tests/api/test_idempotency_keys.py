"""The `Idempotency-Key` header of the API's POSTs (docs/api.md): a retry with the same key and body gets the first
answer back and records nothing more; another body under the key is a 422, a retry while the first still runs a
409, a bad key a 400; keys are each user's own; without the header nothing changes."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from service.api import cases as case_views
from service.db.models import Attachment, Case, Comment, IdempotencyKey, PersonalReport, StartJob, utcnow
from service.errors import Conflict, Unavailable
from service.usecases import idempotency
from service.usecases.context import Actor
from service.worker import run_worker
from tests.api.support import ADMONISHMENT, VETTING, assert_error, start_accountability
from tests.api.test_personal_reports import today
from tests.conformance.bpmn import LANE, chain, definitions, end, message, message_ref, user
from tests.conformance.bpmn import start as start_event

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
VETTING_BODY = {"process": VETTING, "cadre_id": "c1",
                "data": {"proposed_post": "县发改局局长", "selection_method": "competitive"}}


def services(api):
    return api.client.application.extensions["cadreflow"]


def count(api, model, *where) -> int:
    with services(api).db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def start(api, key: str | None, as_: str = "org_dept", **body):
    return api.post("/api/cases", as_=as_, json={**VETTING_BODY, **body},
                    headers=keyed(key) if key is not None else {})


def late_report(api, key: str | None):
    day = today(api)
    body = {"kind": "family", "event_on": (day - timedelta(days=90)).isoformat(), "reported_on": day.isoformat(),
            "summary": "子女出国定居"}
    return api.post("/api/cadres/c1/reports", as_="org_dept", json=body, headers=keyed(key) if key else {})


def test_a_late_personal_report_retried_with_its_key_is_recorded_once_and_opens_one_case(api, cadre):
    first, retry = late_report(api, "report-1"), late_report(api, "report-1")
    assert first.status_code == retry.status_code == 201, (first.json, retry.json)
    assert retry.json == first.json and retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(api, PersonalReport) == 1
    assert count(api, Case, Case.process_key == ADMONISHMENT) == 1


def test_a_case_start_retried_with_its_key_opens_one_case(api, cadre):
    first, retry = start(api, "start-1"), start(api, '"start-1"')  # the draft's quoted form is the same key
    assert first.status_code == retry.status_code == 201
    assert retry.json["id"] == first.json["id"] and retry.get_data() == first.get_data()
    assert count(api, Case, Case.process_key == VETTING) == 1


def test_comments_attachments_and_bulk_starts_retried_with_their_keys_are_recorded_once(api, cadre):
    case_id = start_accountability(api)["id"]
    comments = [api.post(f"/api/cases/{case_id}/comments", as_="discipline", json={"text": "请补充材料"},
                         headers=keyed("comment-1")) for _ in range(2)]
    assert [r.status_code for r in comments] == [201, 201] and comments[0].json == comments[1].json
    uploads = []
    for boundary in ("first-boundary", "second-boundary"):  # a client picks a new boundary for each sending
        _, body = encode_multipart(MultiDict({"file": FileStorage(io.BytesIO(PDF), "材料.pdf")}), boundary)
        uploads.append(api.post(f"/api/cases/{case_id}/attachments", as_="discipline", data=body,
                                content_type=f"multipart/form-data; boundary={boundary}",
                                headers=keyed("upload-1")))
    assert [r.status_code for r in uploads] == [201, 201] and uploads[0].json == uploads[1].json
    jobs = [api.post("/api/bulk-starts", as_="org_dept", json={"process": "rotation_review"},
                     headers=keyed("bulk-1")) for _ in range(2)]
    assert [r.status_code for r in jobs] == [202, 202] and jobs[0].json == jobs[1].json
    assert (count(api, Comment), count(api, Attachment), count(api, StartJob)) == (1, 1, 1)


def test_the_same_key_with_another_body_is_a_422_and_records_nothing(api, cadre):
    assert start(api, "start-1").status_code == 201
    error = assert_error(start(api, "start-1", data={**VETTING_BODY["data"], "proposed_post": "县财政局局长"}),
                         422, "invalid", {"Idempotency-Key"})
    assert "Idempotency-Key" in error["message"]
    assert_error(api.post("/api/cadres/c1/reports", as_="org_dept", json={}, headers=keyed("start-1")), 422)
    assert count(api, Case) == 1 and count(api, PersonalReport) == 0


def test_a_refused_first_sending_gives_its_key_back_for_the_corrected_request(api, cadre):
    assert_error(start(api, "start-1", cadre_id="nobody"), {404, 422})
    assert count(api, IdempotencyKey) == 0
    assert start(api, "start-1").status_code == 201


@pytest.mark.parametrize("key", ["", " ", "a b", "键", 'a"b', "a\\b", '"open', "k" * 256])
def test_a_malformed_or_too_long_key_is_a_400_and_records_nothing(api, cadre, key):
    assert_error(start(api, key), 400, "bad_request", {"Idempotency-Key"})
    assert count(api, Case) == 0 and count(api, IdempotencyKey) == 0


def test_a_key_of_255_characters_is_taken(api, cadre):
    assert [start(api, "k" * 255).status_code for _ in range(2)] == [201, 201]
    assert count(api, Case) == 1


def test_another_users_same_key_is_a_request_of_its_own_and_never_sees_the_first_answer(api, cadre):
    first = start(api, "shared-key", as_="org_dept")
    other = start(api, "shared-key", as_="org_dept2")
    assert first.status_code == other.status_code == 201
    assert other.json["id"] != first.json["id"] and "Idempotent-Replayed" not in other.headers
    assert count(api, Case, Case.created_by == "org_dept2", Case.id == other.json["id"]) == 1
    # Each retries its own: gets its own answer back.
    assert start(api, "shared-key", as_="org_dept2").json == other.json
    assert start(api, "shared-key", as_="org_dept").json == first.json
    assert count(api, Case) == 2


def test_without_the_header_each_sending_is_carried_out_as_before(api, cadre):
    assert [start(api, None).status_code for _ in range(2)] == [201, 201]
    assert [late_report(api, None).status_code for _ in range(2)] == [201, 201]
    assert count(api, Case, Case.process_key == VETTING) == 2 and count(api, PersonalReport) == 2
    assert count(api, IdempotencyKey) == 0


def test_a_key_is_forgotten_after_the_documented_time(api, cadre):
    assert start(api, "start-1").status_code == 201
    with services(api).db.unit_of_work() as session:
        session.execute(update(IdempotencyKey).values(
            created_at=utcnow() - timedelta(hours=idempotency.KEEP_HOURS, minutes=1)))
    again = start(api, "start-1")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert count(api, Case) == 2


def test_a_second_completion_is_still_a_409_without_the_header_and_a_replay_with_it(api, cadre):
    case_id = start_accountability(api)["id"]
    task = api.open_task(case_id, "preliminary_verification")
    url, body = f"/api/tasks/{task['id']}/complete", {"data": {"founded": True, "notes": "基本属实"}}
    done = api.post(url, as_="discipline", json=body, headers=keyed("complete-1"))
    assert done.status_code == 200, done.json
    assert api.post(url, as_="discipline", json=body, headers=keyed("complete-1")).json == done.json
    assert_error(api.post(url, as_="discipline", json=body), 409)


def test_a_retry_while_the_first_sending_runs_is_a_409_and_one_case_opens(api, cadre, monkeypatch):
    """Four clients send one key at once while the first is held inside the use case: the other three are told
    to retry (409), nothing of theirs runs, and a retry after the first finished gets its answer."""
    inside, release = threading.Event(), threading.Event()
    real_start = case_views.cases.start_case

    def held(*args, **kwargs):
        inside.set()
        assert release.wait(30)
        return real_start(*args, **kwargs)

    monkeypatch.setattr(case_views.cases, "start_case", held)
    token = api.token("org_dept")

    def send(into: list) -> None:  # a client of its own per thread
        client = api.client.application.test_client()
        into.append(client.post("/api/cases", json=VETTING_BODY,
                                headers={"Authorization": f"Bearer {token}", **keyed("race-1")}))

    first_answer: list = []
    first = threading.Thread(target=send, args=(first_answer,))
    first.start()
    assert inside.wait(30)
    others: list = []
    racers = [threading.Thread(target=send, args=(others,)) for _ in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    release.set()
    first.join(30)
    assert [r.status_code for r in others] == [409, 409, 409]
    assert_error(others[0], 409)
    assert [r.status_code for r in first_answer] == [201]
    assert start(api, "race-1").json == first_answer[0].json
    assert count(api, Case) == 1


def test_a_claim_racing_an_uncommitted_one_for_the_same_key_is_a_409(api, cadre):
    """Two sendings that both find no row: the database's key lets one insert, the other is told to retry (on
    PostgreSQL the loser waits on the winner's row and its insert then fails; on SQLite it waits for the writer)."""
    db, actor = services(api).db, Actor("org_dept", frozenset({"org_dept"}))
    outcome: list = []

    def claim() -> None:
        try:
            outcome.append(idempotency.claim(services(api), actor, "race-2", "0" * 64))
        except Conflict as error:
            outcome.append(error)

    with db.unit_of_work() as session:
        session.add(IdempotencyKey(username="org_dept", key="race-2", request_sha256="0" * 64, created_at=utcnow()))
        session.flush()
        racer = threading.Thread(target=claim)
        racer.start()
        if not db.is_sqlite:  # wait until its insert waits on ours
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(db) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_on_a_lock(db)
    racer.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
    assert "still being processed" in outcome[0].message


def _waiting_on_a_lock(db) -> bool:
    with db.read_engine.connect() as connection:
        return bool(connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")))


def test_a_message_that_starts_a_case_retried_with_its_key_opens_one_case(api, cadre):
    key = "letters"
    bpmn = definitions(key, start_event(definition=message_ref(f"{key}_open")) + user("a") + end()
                       + chain("start", "a", "end"), {LANE: ["a"]}, message(f"{key}_open"))
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", content_type="multipart/form-data",
                        data={"bpmn": (io.BytesIO(bpmn), f"{key}.bpmn")})
    assert deployed.status_code == 201, deployed.json
    body = {"name": f"{key}_open", "data": {"cadre_id": "c1", "note": "来信"}}
    sent = [api.post("/api/messages", as_="admin", json=body, headers=keyed("letter-1")) for _ in range(2)]
    assert [r.status_code for r in sent] == [201, 201] and sent[0].json == sent[1].json
    assert count(api, Case, Case.process_key == key) == 1


def test_the_worker_forgets_every_users_expired_keys_and_their_answers(api, cadre):
    """A stored answer holds the record as the caller saw it (a case's data): it is kept no longer than the
    documented time even if its user never sends another key."""
    assert start(api, "old").status_code == 201 and start(api, "fresh", as_="org_dept2").status_code == 201
    with services(api).db.unit_of_work() as session:
        session.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old").values(
            created_at=utcnow() - timedelta(hours=idempotency.KEEP_HOURS, minutes=1)))
    run_worker(services(api), threading.Event(), once=True)
    with services(api).db.unit_of_work(write=False) as session:
        assert session.scalars(select(IdempotencyKey.key)).all() == ["fresh"]


def test_a_created_record_whose_answer_cannot_be_kept_is_still_answered_and_never_made_twice(api, cadre, monkeypatch):
    """The database out of reach just after the case was opened, as its answer is kept: the caller still gets the
    201 (the case exists; a 503 would tell it nothing was made), and a retry is a 409, never a second case."""
    def unreachable(*_args, **_kwargs):
        raise Unavailable("the database cannot be reached right now (数据库暂时无法连接)")

    monkeypatch.setattr(idempotency, "keep", unreachable)
    first = start(api, "start-1")
    assert first.status_code == 201 and count(api, Case) == 1
    monkeypatch.undo()
    assert_error(start(api, "start-1"), 409)
    assert count(api, Case) == 1
