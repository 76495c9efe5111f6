"""Notifications over HTTP: who is told of a new task or a supervision, reading and marking, and refusals."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from service.db.models import Case, Notification, Task, User, UserRole, utcnow
from service.usecases.notifications import tasks_opened
from tests.api.support import (
    CLIENT_ERRORS,
    USERS,
    assert_error,
    departure_to_fieldwork,
    fire_after_deadline,
    start_accountability,
    start_departure,
)
from tests.api.test_errors import HOSTILE_RAW

NOTIFIED_ROLES = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head",
                  "designer", "admin"]


def notes(api, as_, **params):
    response = api.get("/api/notifications", as_=as_, query_string=params)
    assert response.status_code == 200, response.json
    return response.json


class TestWhoIsTold:
    def test_a_new_task_tells_every_holder_of_its_role_and_nobody_else(self, api, cadre):
        """Opening preliminary_verification (discipline) notifies discipline, discipline2 and multi, once each."""
        case = start_accountability(api)
        task = case["open_tasks"][0]
        holders = sorted(name for name, roles in USERS.items() if "discipline" in roles)
        for name in holders:
            page = notes(api, name)
            assert [(n["kind"], n["task_id"], n["case_id"], n["read"]) for n in page["items"]] == [
                ("new_task", task["id"], case["id"], False)]
            assert page["unread"] == 1 and page["total"] == 1
            assert "初步核实" in page["items"][0]["text"] and f"#{case['id']}" in page["items"][0]["text"]
            assert "New task" in page["items"][0]["text"] and page["items"][0]["openable"] is True
        for name in set(USERS) - set(holders) - {"norole"}:
            assert notes(api, name)["items"] == [], name

    def test_an_assigned_task_tells_only_its_assignee(self, api, cadre):
        """audit_fieldwork assigned to audit2 by the diagram: audit2 is told, the other audit users are not."""
        case_id = departure_to_fieldwork(api, team_lead="audit2")
        fieldwork = api.open_task(case_id, "audit_fieldwork")
        assert fieldwork["assignee"] == "audit2"
        assert [n["task_id"] for n in notes(api, "audit2")["items"]] == [fieldwork["id"]]
        for name in ("audit", "multi", "audit_head"):
            assert fieldwork["id"] not in [n["task_id"] for n in notes(api, name)["items"]], name

    def test_a_deactivated_holder_is_not_told(self, api, cadre):
        """Recipients are the users holding the role when the task opens: a deactivated one gets nothing."""
        assert api.patch("/api/users/discipline2", json={"active": False}).status_code == 200
        start_accountability(api)
        api.patch("/api/users/discipline2", json={"active": True})
        api.tokens.pop("discipline2")  # deactivation ended its token: log in again
        assert notes(api, "discipline2")["items"] == []
        assert len(notes(api, "discipline")["items"]) == 1

    def test_supervision_tells_the_urged_holders_and_the_supervising_role(self, fast_api, fast_services):
        """Past its deadline, supervise_preliminary_verification (督办) tells the discipline holders that their task
        is being supervised, and discipline_head to supervise it; no plain "new task" for the supervision task."""
        fast_api.create_cadre("c1")
        case = start_accountability(fast_api)
        urged = case["open_tasks"][0]
        assert fire_after_deadline(fast_services) == 1
        supervise = fast_api.open_task(case["id"], "supervise_preliminary_verification")
        for name in ("discipline", "discipline2", "multi"):
            kinds = [(n["kind"], n["task_id"]) for n in notes(fast_api, name)["items"]]
            assert kinds == [("supervision", urged["id"]), ("new_task", urged["id"])], name
            assert "督办" in notes(fast_api, name)["items"][0]["text"]
        head = notes(fast_api, "discipline_head")["items"]
        assert [(n["kind"], n["task_id"]) for n in head] == [("supervision", supervise["id"])]
        assert "督办" in head[0]["text_zh"] and "Supervise" in head[0]["text_en"]

    def test_tasks_opened_together_tell_active_assignees_and_holders_and_mark_who_is_mailed(self, api, services,
                                                                                             cadre):
        """Three tasks opened in one step: the role's task tells its active holders (in the order of their ids), an
        assigned task its assignee while active, else its role's active holders; a notice is to be mailed to a holder
        with an address who takes no daily digest, and to nobody else."""
        case_id = start_accountability(api)["id"]
        for name, change in (("discipline", {"email": "d@example.gov.cn"}), ("audit", {"active": False}),
                             ("discipline2", {"email": "d2@example.gov.cn", "mail_digest": True})):
            assert api.patch(f"/api/users/{name}", json=change).status_code == 200
        with services.db.unit_of_work() as session:
            case = session.get(Case, case_id)
            opened = [Task(id=f"t-{to}", case_id=case_id, process_key=case.process_key, element_id="extra",
                           process_version_id=case.process_version_id, name="额外", role=role, assignee=assignee,
                           status="open", created_at=utcnow(), overdue=False)
                      for to, role, assignee in (("role", "discipline", None), ("audit", "audit", "audit"),
                                                 ("audit2", "audit", "audit2"))]
            session.add_all(opened)
            tasks_opened(session, case, opened)
        with services.db.unit_of_work(write=False) as session:
            told = session.execute(select(Notification.task_id, User.username, Notification.mail_status)
                                   .join(User, User.id == Notification.user_id)
                                   .where(Notification.task_id.like("t-%")).order_by(Notification.id)).all()
            holders = list(session.scalars(select(User.username).join(UserRole, UserRole.user_id == User.id)
                                           .where(UserRole.role == "discipline").order_by(User.id)))
        mailed = {"discipline": "pending"}
        assert told == [("t-audit", "audit2", None), ("t-audit", "multi", None), ("t-audit2", "audit2", None)] + [
            ("t-role", name, mailed.get(name)) for name in holders]
        assert sorted(holders) == ["discipline", "discipline2", "multi"]


class TestReading:
    def test_every_role_reads_its_own_list(self, api):
        """Each role's user gets 200 with an empty page before anything happened."""
        for role in NOTIFIED_ROLES:
            assert notes(api, role) == {"items": [], "total": 0, "unread": 0, "page": 1, "per_page": 20}

    def test_marking_read_one_and_all_and_the_unread_filter(self, api, cadre):
        """Read one (twice is fine), then the rest; unread=1 keeps the unread, newest first."""
        first = start_accountability(api)
        second = start_accountability(api, source="web")
        items = notes(api, "discipline")["items"]
        assert [n["case_id"] for n in items] == [second["id"], first["id"]]
        for _ in range(2):
            marked = api.post(f"/api/notifications/{items[1]['id']}/read", as_="discipline")
            assert marked.status_code == 200 and marked.json["read"] is True
        page = notes(api, "discipline", unread=1)
        assert [n["id"] for n in page["items"]] == [items[0]["id"]] and page["unread"] == 1 and page["total"] == 1
        assert notes(api, "discipline2")["unread"] == 2  # reading is personal
        response = api.post("/api/notifications/read-all", as_="discipline")
        assert response.status_code == 200 and response.json == {"marked": 1}
        assert notes(api, "discipline")["unread"] == 0 and notes(api, "discipline", unread=1)["items"] == []

    def test_pages_newest_first(self, api, cadre):
        """per_page and page walk the list from the newest."""
        ids = [start_accountability(api)["id"] for _ in range(3)]
        pages = [notes(api, "discipline", per_page=2, page=p) for p in (1, 2, 3)]
        assert [[n["case_id"] for n in p["items"]] for p in pages] == [ids[:0:-1], ids[:1], []]
        assert all(p["total"] == 3 for p in pages)
        # Past the end: empty, and the page asked for (not the last), in the documented keys only.
        assert notes(api, "discipline", per_page=2, page=9) == {"items": [], "total": 3, "unread": 3, "page": 9,
                                                                "per_page": 2}

    def test_task_state_follows_the_task(self, api, cadre):
        """Once the task is completed, its notification says closed; another holder's claim says held."""
        case = start_accountability(api)
        task = case["open_tasks"][0]
        assert notes(api, "discipline")["items"][0]["task_state"] == "todo"
        api.post(f"/api/tasks/{task['id']}/claim", as_="discipline2")
        assert notes(api, "discipline")["items"][0]["task_state"] == "held"
        assert notes(api, "discipline2")["items"][0]["task_state"] == "todo"
        api.complete(case["id"], "preliminary_verification", as_="discipline2", founded=False)
        assert notes(api, "discipline")["items"][0]["task_state"] == "closed"

    def test_a_notice_tells_nothing_of_a_case_its_reader_may_no_longer_read(self, api, services, cadre):
        """Audit finding: a user who lost the role of a notified task still saw, through the notice, whether the
        task was open or closed. Its notices stay (they are its own), but link to nothing and show no state."""
        from service.usecases import notifications
        from service.usecases.context import Actor

        case_id = start_departure(api)["id"]  # assign_audit_team open: audit_head is told
        was = Actor("audit_head", frozenset({"audit_head"}))
        now = Actor("audit_head", frozenset({"committee"}))  # reads no departure audit
        (before,) = notifications.list_notifications(services, was)["items"]
        assert (before["case_id"], before["task_state"], before["openable"]) == (case_id, "todo", True)
        (after,) = notifications.list_notifications(services, now)["items"]
        assert (after["case_id"], after["task_state"], after["openable"]) == (case_id, None, False)
        marked = notifications.mark_read(services, now, after["id"])
        assert (marked["task_state"], marked["openable"], marked["read"]) == (None, False, True)


class TestRefusals:
    def test_no_login_is_401(self, api):
        """Every notification route wants a token."""
        for method, url in (("GET", "/api/notifications"), ("POST", "/api/notifications/1/read"),
                            ("POST", "/api/notifications/read-all"), ("GET", "/api/me/mail"),
                            ("PATCH", "/api/me/mail")):
            assert_error(api.call(method, url), 401)
            assert_error(api.call(method, url, headers={"Authorization": "Bearer not-a-token"}), 401)

    def test_another_users_notification_is_404_like_an_unknown_id(self, api, cadre):
        """discipline2 cannot read or mark discipline's notification, nor tell it from one that does not exist."""
        start_accountability(api)
        mine = notes(api, "discipline")["items"][0]["id"]
        for who in ("discipline2", "audit", "admin"):
            theirs = api.post(f"/api/notifications/{mine}/read", as_=who)
            unknown = api.post("/api/notifications/999999/read", as_=who)
            assert_error(theirs, 404, "not_found")
            assert theirs.json["error"]["message"].replace(str(mine), "N") == (
                unknown.json["error"]["message"].replace("999999", "N"))
        assert notes(api, "discipline")["unread"] == 1

    @pytest.mark.parametrize("raw_id", ["0", "-1", "abc", "1.5", "99999999999999999999999", "%00", "1;DROP"])
    def test_odd_ids_are_404(self, api, raw_id):
        """Ids that are not a positive database integer are unknown, never a 500."""
        assert_error(api.post(f"/api/notifications/{raw_id}/read", as_="discipline"), 404)

    @pytest.mark.parametrize("query", [{"page": "abc"}, {"page": "0"}, {"per_page": "101"}, {"per_page": "-5"},
                                       {"page": "1e9"}, {"per_page": "\x00"}])
    def test_bad_paging_is_400(self, api, query):
        """A malformed or out-of-range page is a 400 naming the parameter (API.md: 400 malformed)."""
        response = api.get("/api/notifications", as_="discipline", query_string=query)
        assert_error(response, 400, "bad_request", fields=set(query))

    def test_a_user_without_roles_is_refused(self, api):
        """No role, no work and no notifications: 403 like the rest of the API."""
        assert_error(api.get("/api/notifications", as_="norole"), 403)


class TestMailSettings:
    def test_a_user_sets_and_clears_its_own_address_and_digest(self, api):
        """PATCH /api/me/mail changes only the caller; "" removes the address."""
        assert api.get("/api/me/mail", as_="audit").json == {"email": "", "mail_digest": False}
        changed = api.patch("/api/me/mail", as_="audit", json={"email": "audit@example.gov.cn", "mail_digest": True})
        assert changed.status_code == 200 and changed.json == {"email": "audit@example.gov.cn", "mail_digest": True}
        listed = {u["username"]: u for u in api.get("/api/users").json}
        assert (listed["audit"]["email"], listed["audit2"]["email"]) == ("audit@example.gov.cn", "")
        assert api.patch("/api/me/mail", as_="audit", json={"email": ""}).json == {"email": "", "mail_digest": True}

    def test_admin_sets_a_users_address_and_others_may_not(self, api):
        """PATCH /api/users/<name> takes email and mail_digest from an admin only."""
        response = api.patch("/api/users/committee", json={"email": "c@example.gov.cn", "mail_digest": False})
        assert response.status_code == 200 and response.json["email"] == "c@example.gov.cn"
        assert_error(api.patch("/api/users/committee", as_="org_head", json={"email": "x@example.gov.cn"}), 403)
        assert api.get("/api/me/mail", as_="committee").json["email"] == "c@example.gov.cn"

    @pytest.mark.parametrize("email", ["a@b.c\r\nBcc: everyone@example.gov.cn", "not an address", "a@b",
                                       "<a@b.cn>", "张三 <a@b.cn>", "a@b.cn, c@d.cn", "x" * 250 + "@b.cn", 5,
                                       ["a@b.cn"], {"to": "a@b.cn"}, True])
    def test_bad_addresses_are_422_and_change_nothing(self, api, email):
        """Only a single plain address is taken: no header injection, no lists, no display names."""
        api.patch("/api/me/mail", as_="audit", json={"email": "audit@example.gov.cn"})
        for response in (api.patch("/api/me/mail", as_="audit", json={"email": email, "mail_digest": True}),
                         api.patch("/api/users/audit", json={"email": email, "mail_digest": True})):
            assert_error(response, 422, "invalid", fields={"email"})
        assert api.get("/api/me/mail", as_="audit").json == {"email": "audit@example.gov.cn", "mail_digest": False}

    @pytest.mark.parametrize("digest", ["yes", 1, None])
    def test_digest_must_be_a_boolean(self, api, digest):
        """mail_digest other than true/false is a 422 (null leaves it as it is)."""
        response = api.patch("/api/me/mail", as_="audit", json={"mail_digest": digest})
        if digest is None:
            assert response.status_code == 200
        else:
            assert_error(response, 422, "invalid", fields={"mail_digest"})

    @pytest.mark.parametrize("name", sorted(HOSTILE_RAW))
    def test_hostile_bodies_never_500(self, api, name):
        """Raw hostile bodies on PATCH /api/me/mail get a 4xx with the error body."""
        response = api.patch("/api/me/mail", as_="audit", data=HOSTILE_RAW[name], content_type="application/json")
        assert_error(response, CLIENT_ERRORS)
        unknown = api.patch("/api/me/mail", as_="audit", data=json.dumps({"roles": ["admin"]}),
                            content_type="application/json")
        assert_error(unknown, 422, fields={"roles"})
