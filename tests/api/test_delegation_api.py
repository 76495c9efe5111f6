"""Reassigning, extending and out of office: who may, what the new holder must hold, what history and notices say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.errors import CaseIncident
from service.usecases import notifications, tasks, users
from service.usecases.casehistory import lock_case
from service.usecases.context import Actor
from service.usecases.stepper import hold_as_incident
from tests.api.support import (
    assert_error,
    departure_to_fieldwork,
    fire_after_deadline,
    start_accountability,
    start_vetting,
)
from tests.conftest import PASSWORD


def verification(api):
    case = start_accountability(api)
    return case["id"], case["open_tasks"][0]


def assign(api, task_id, username, as_):
    return api.post(f"/api/tasks/{task_id}/assign", as_=as_, json={"username": username})


def extend(api, task_id, as_, until="2099-01-01", reason="材料需补充"):
    return api.post(f"/api/tasks/{task_id}/extend", as_=as_, json={"until": until, "reason": reason})


def notices(api, user):
    return api.get("/api/notifications", as_=user).json["items"]


class TestReassign:
    def test_the_holder_hands_a_task_on_and_the_new_holder_is_told(self, api, cadre):
        """discipline claims, then hands it to discipline2: held by discipline2, recorded, notified, completable."""
        case_id, task = verification(api)
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="discipline").status_code == 200
        response = assign(api, task["id"], "discipline2", "discipline")
        assert response.status_code == 200, response.json
        assert response.json["assignee"] == "discipline2"
        entry = [e for e in api.history(case_id) if e["action"] == "assign"][-1]
        assert (entry["actor"], entry["task"]) == ("discipline", "preliminary_verification")
        assert entry["detail"] == {"task_id": task["id"], "from": "discipline", "to": "discipline2"}
        told = [n for n in notices(api, "discipline2") if "转交" in n["text"]]
        assert [(n["kind"], n["task_id"]) for n in told] == [("new_task", task["id"])]
        assert_error(api.complete_raw(task["id"], "discipline", {"founded": False, "notes": "x"}), 403)
        assert api.complete_raw(task["id"], "discipline2", {"founded": False, "notes": "不属实"}).status_code == 200

    def test_the_lane_head_and_admin_assign_an_unclaimed_task(self, api, cadre):
        _case_id, task = verification(api)
        assert assign(api, task["id"], "discipline2", "discipline_head").json["assignee"] == "discipline2"
        assert assign(api, task["id"], "multi", "admin").json["assignee"] == "multi"

    def test_a_new_holder_without_the_lanes_role_is_refused(self, api, cadre):
        """audit_head holds no discipline role: 422 on username; unknown or missing users too."""
        _case_id, task = verification(api)
        for username in ("audit_head", "nobody", None, 3):
            assert_error(assign(api, task["id"], username, "discipline_head"), 422, fields={"username"})
        assert api.open_task(_case_id, "preliminary_verification")["assignee"] is None

    def test_only_holder_lane_head_or_admin_may_reassign(self, api, cadre):
        """Another discipline user, the committee (which reads the case): 403; an outsider: 404."""
        _case_id, task = verification(api)
        assert_error(assign(api, task["id"], "discipline2", "discipline"), 403)  # unclaimed: not the holder
        api.post(f"/api/tasks/{task['id']}/claim", as_="discipline")
        for user in ("discipline2", "committee", "org_head"):
            assert_error(assign(api, task["id"], "discipline2", user), {403, 404})
        assert_error(assign(api, task["id"], "discipline2", "committee"), 403)
        assert_error(assign(api, task["id"], "discipline2", "audit_head"), 404)
        assert_error(api.post(f"/api/tasks/{task['id']}/assign", as_="discipline", json={"username": "x", "y": 1}),
                     422)

    def test_a_closed_task_cannot_be_reassigned(self, api, cadre):
        case_id, task = verification(api)
        api.complete(case_id, "preliminary_verification", founded=False, notes="不属实")
        assert_error(assign(api, task["id"], "discipline2", "admin"), 409)


class TestExtend:
    def test_the_lane_head_extends_to_the_end_of_a_day_in_the_county(self, api, cadre):
        case_id, task = verification(api)
        response = extend(api, task["id"], "discipline_head", until="2099-03-01")
        assert response.status_code == 200, response.json
        assert datetime.fromisoformat(response.json["due_at"]) == datetime(2099, 3, 1, 16, tzinfo=UTC) - timedelta(
            microseconds=1)  # 24:00 in Asia/Shanghai
        entry = [e for e in api.history(case_id) if e["action"] == "extend"][-1]
        assert entry["actor"] == "discipline_head" and entry["detail"]["reason"] == "材料需补充"
        assert entry["detail"]["from"] == task["due_at"] and entry["detail"]["until"] == response.json["due_at"]

    def test_who_may_not_extend_and_bad_deadlines(self, api, cadre):
        _case_id, task = verification(api)
        for user in ("discipline", "committee"):
            assert_error(extend(api, task["id"], user), 403)
        assert_error(extend(api, task["id"], "audit_head"), 404)
        assert_error(extend(api, task["id"], "admin", until="2000-01-01"), 422, fields={"until"})
        assert_error(extend(api, task["id"], "admin", until="soon"), 422, fields={"until"})
        assert_error(extend(api, task["id"], "admin", reason=" "), 422, fields={"reason"})
        earlier = (datetime.fromisoformat(task["due_at"]) - timedelta(days=1)).isoformat()
        assert_error(extend(api, task["id"], "admin", until=earlier), 422, fields={"until"})

    def test_a_case_held_in_an_incident_is_not_extended(self, api, services, cadre):
        """A case held for a person (its step stopped whole, e.g. an executor killed) stays held: extending one of
        its tasks is 409, where its step cleared the incident, left nothing to retry and put the case back in the
        timer scan to fail again."""
        case_id, task = verification(api)
        with services.db.unit_of_work() as session:
            hold_as_incident(session, lock_case(session, case_id), CaseIncident("executor killed", None, None))
        assert_error(extend(api, task["id"], "discipline_head"), 409)
        case = api.case(case_id)
        assert (case["status"], case["incident"]["message"]) == ("incident", "executor killed")
        assert api.open_task(case_id, "preliminary_verification")["due_at"] == task["due_at"]

    def test_a_task_without_a_deadline_is_not_extended(self, api, cadre):
        """Extending a task that has no deadline is 409 and changes nothing: it silently gave the task one (and
        reminders and an overdue mark later), where the process set none."""
        case_id = start_vetting(api)["id"]
        task = api.open_task(case_id, "solicit_family_opinion")
        assert task["due_at"] is None
        response = extend(api, task["id"], "org_head")
        assert_error(response, 409)
        assert "没有办理期限" in response.json["error"]["message"]
        assert api.open_task(case_id, "solicit_family_opinion")["due_at"] is None
        assert not [e for e in api.history(case_id) if e["action"] == "extend"]

    def test_the_lane_head_is_the_role_catalogs_head_role(self, api, cadre):
        """Who heads a lane is data (/api/roles): moved to another role, the old head may no longer extend."""
        _case_id, task = verification(api)
        moved = api.put("/api/roles/discipline", json={"head_role": "committee"})
        assert moved.status_code == 200, moved.json
        assert_error(extend(api, task["id"], "discipline_head"), 403)
        assert extend(api, task["id"], "committee", until="2099-02-01").status_code == 200
        api.put("/api/roles/discipline", json={"head_role": None})
        assert_error(extend(api, task["id"], "committee", until="2099-03-01"), 403)
        assert extend(api, task["id"], "admin", until="2099-03-01").status_code == 200

    def test_an_extension_survives_later_steps_of_the_case(self, fast_api, fast_services):
        """Completing a parallel task (the supervision its passed deadline opened) re-syncs the open tasks: the
        extended deadline stays."""
        fast_api.create_cadre("c1")
        case_id, task = verification(fast_api)
        fire_after_deadline(fast_services)
        extended = extend(fast_api, task["id"], "discipline_head", until="2099-01-01").json["due_at"]
        fast_api.complete(case_id, "supervise_preliminary_verification", instruction="尽快核实")
        assert fast_api.open_elements(case_id) == ["preliminary_verification"]
        assert fast_api.open_task(case_id, "preliminary_verification")["due_at"] == extended

    def test_the_escalation_follows_the_new_deadline(self, fast_api, fast_services):
        """preliminary_verification is due in 1 s; extended, nothing escalates when that second has passed: the
        diagram's timer moved with it (the case's next timer is the new deadline)."""
        fast_api.create_cadre("c1")
        case_id, task = verification(fast_api)
        due = extend(fast_api, task["id"], "discipline_head").json["due_at"]
        assert fast_api.case(case_id)["next_timer_due"] == due
        fire_after_deadline(fast_services)
        assert fast_api.open_elements(case_id) == ["preliminary_verification"]
        assert fast_api.open_task(case_id, "preliminary_verification")["overdue"] is False


class TestOutOfOffice:
    def test_a_diagram_assignment_goes_to_the_substitute_while_away(self, api, cadre):
        """audit2 away, audit standing in: the fieldwork the diagram gives audit2 goes to audit, recorded."""
        response = api.call("PUT", "/api/me/substitute", "audit2", json={"username": "audit", "until": "2099-01-01"})
        assert response.status_code == 200, response.json
        assert response.json["substitute"] == "audit"
        assert api.get("/api/me/substitute", as_="audit2").json["substitute"] == "audit"
        case_id = departure_to_fieldwork(api, team_lead="audit2")
        fieldwork = api.open_task(case_id, "audit_fieldwork")
        assert fieldwork["assignee"] == "audit"
        entry = [e for e in api.history(case_id) if e["action"] == "substitute"][-1]
        assert entry["detail"] == {"task_id": fieldwork["id"], "instead_of": "audit2", "to": "audit"}
        assert fieldwork["id"] in [n["task_id"] for n in notices(api, "audit")]
        assert fieldwork["id"] not in [n["task_id"] for n in notices(api, "audit2")]
        assert api.get(f"/api/cases/{case_id}", as_="audit").status_code == 200

    def test_a_reassignment_to_someone_away_goes_to_the_substitute(self, api, cadre):
        api.call("PUT", "/api/me/substitute", "discipline2", json={"username": "multi", "until": "2099-01-01"})
        case_id, task = verification(api)
        response = assign(api, task["id"], "discipline2", "discipline_head")
        assert response.json["assignee"] == "multi"
        assert [e for e in api.history(case_id) if e["action"] == "assign"][-1]["detail"]["instead_of"] == "discipline2"

    def test_after_the_absence_ends_tasks_come_back(self, api, cadre):
        api.call("PUT", "/api/me/substitute", "audit2", json={"username": "audit", "until": "2099-01-01"})
        assert api.call("DELETE", "/api/me/substitute", "audit2").status_code == 204
        assert api.get("/api/me/substitute", as_="audit2").json is None
        case_id = departure_to_fieldwork(api, team_lead="audit2")
        assert api.open_task(case_id, "audit_fieldwork")["assignee"] == "audit2"

    def test_a_substitute_without_the_tasks_role_stands_in_for_nobody(self, api, cadre):
        """audit2 names the designer: the fieldwork (audit lane) stays with audit2, and the designer, who holds no
        role to read cases, reads nothing of it and cannot complete it."""
        api.call("PUT", "/api/me/substitute", "audit2", json={"username": "designer", "until": "2099-01-01"})
        case_id = departure_to_fieldwork(api, team_lead="audit2")
        fieldwork = api.open_task(case_id, "audit_fieldwork")
        assert fieldwork["assignee"] == "audit2"
        assert not [e for e in api.history(case_id) if e["action"] == "substitute"]
        assert_error(api.get(f"/api/cases/{case_id}", as_="designer"), 404)
        done = api.post(f"/api/tasks/{fieldwork['id']}/complete", as_="designer",
                        json={"data": {"findings": "none", "issues_found": False}})
        assert_error(done, 404)
        assert fieldwork["id"] in [n["task_id"] for n in notices(api, "audit2")]

    def test_a_deactivated_substitute_stands_in_for_nobody(self, api, cadre):
        api.call("PUT", "/api/me/substitute", "audit2", json={"username": "multi", "until": "2099-01-01"})
        assert api.patch("/api/users/multi", json={"active": False}).status_code == 200
        case_id = departure_to_fieldwork(api, team_lead="audit2")
        assert api.open_task(case_id, "audit_fieldwork")["assignee"] == "audit2"

    def test_an_absence_not_yet_begun_changes_nothing(self, api, cadre):
        body = {"username": "audit", "from": "2098-01-01", "until": "2099-01-01"}
        assert api.call("PUT", "/api/me/substitute", "audit2", json=body).status_code == 200
        case_id = departure_to_fieldwork(api, team_lead="audit2")
        assert api.open_task(case_id, "audit_fieldwork")["assignee"] == "audit2"

    def test_bad_absences_are_refused(self, api):
        for body, field in [({"username": "audit2", "until": "2099-01-01"}, "username"),
                            ({"username": "nobody", "until": "2099-01-01"}, "username"),
                            ({"username": "audit", "until": "2000-01-01"}, "until"),
                            ({"username": "audit", "until": "tomorrow"}, "until"),
                            ({"username": "audit"}, "until"),
                            ({"username": "audit", "from": "2099-02-01", "until": "2099-01-01"}, "until"),
                            ({"username": "audit", "from": [], "until": "2099-01-01"}, "from")]:
            assert_error(api.call("PUT", "/api/me/substitute", "audit2", json=body), 422, fields={field})
        assert api.get("/api/me/substitute", as_="audit2").json is None
        assert_error(api.call("PUT", "/api/me/substitute", "norole", json={}), 403)


class TestDeactivation:
    def test_deactivating_a_user_gives_their_held_tasks_back_to_the_role(self, api, cadre):
        """discipline2 holds two tasks, discipline one: deactivating discipline2 frees its two (an unclaim by the
        admin naming why, on each case) and leaves discipline's; the role's holders then see and take them."""
        held = [verification(api) for _ in range(2)]
        other_case, other = verification(api)
        for _, task in held:
            assert api.post(f"/api/tasks/{task['id']}/claim", as_="discipline2").status_code == 200
        assert api.post(f"/api/tasks/{other['id']}/claim", as_="discipline").status_code == 200
        assert api.patch("/api/users/discipline2", json={"active": False}).status_code == 200
        for case_id, task in held:
            assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
            entry = api.history(case_id)[-1]
            assert (entry["action"], entry["actor"], entry["task"]) == ("unclaim", "admin", "preliminary_verification")
            assert entry["detail"] == {"task_id": task["id"], "from": "discipline2",
                                       "reason": "账号停用 (account deactivated)"}
        assert api.open_task(other_case, "preliminary_verification")["assignee"] == "discipline"
        assert api.history(other_case)[-1]["action"] == "claim"
        freed = {task["id"] for _, task in held}
        assert freed <= {t["id"] for t in api.inbox("multi")}
        assert api.post(f"/api/tasks/{held[0][1]['id']}/claim", as_="multi").status_code == 200
        assert api.patch("/api/users/discipline2", json={"active": True}).status_code == 200
        assert api.open_task(held[1][0], "preliminary_verification")["assignee"] is None  # not given back again

    def test_the_roles_holders_are_told_of_a_task_handed_back(self, api, services, cadre):
        """A handed-back task is new to its role's pool: each active holder of the role gets a `new_task` notice
        naming whose account was deactivated; the deactivated user and other roles get none of it."""
        _case_id, task = verification(api)
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="discipline2").status_code == 200
        assert api.patch("/api/users/discipline2", json={"active": False}).status_code == 200
        for user in ("discipline", "multi"):
            told = [n for n in notices(api, user) if "账号已停用" in n["text"]]
            assert [(n["kind"], n["task_id"], n["task_state"]) for n in told] == [("new_task", task["id"], "todo")]
            assert told[0]["text_zh"].startswith("discipline2 的账号已停用")
            assert "discipline2's account was deactivated" in told[0]["text_en"]
        assert task["id"] not in [n["task_id"] for n in notices(api, "audit")]
        own = notifications.list_notifications(services, Actor("discipline2", frozenset({"discipline"})))["items"]
        assert not [n for n in own if "账号已停用" in n["text"]]


class TestRoleRemoval:
    def test_losing_a_role_gives_back_the_tasks_of_that_role(self, api, cadre):
        """multi (discipline, audit) holds a discipline task, then the admin takes discipline away: the task goes
        back to the role's pool (an unclaim by the admin naming why), and multi, still an approver through audit,
        may neither complete nor return nor hand on what its roles no longer give it."""
        case_id, task = verification(api)
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="multi").status_code == 200
        assert api.patch("/api/users/multi", json={"roles": ["audit"]}).status_code == 200
        login = api.client.post("/api/auth/token", json={"username": "multi", "password": PASSWORD})
        api.tokens["multi"] = login.json["token"]  # the role change ended its tokens
        assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
        entry = api.history(case_id)[-1]
        assert (entry["action"], entry["actor"], entry["task"]) == ("unclaim", "admin", "preliminary_verification")
        assert entry["detail"] == {"task_id": task["id"], "from": "multi", "reason": "角色变更 (role removed)"}
        assert api.complete_raw(task["id"], "multi", {"founded": False, "notes": "不属实"}).status_code in (403, 404)
        assert assign(api, task["id"], "discipline2", "multi").status_code in (403, 404)
        assert task["id"] in {t["id"] for t in api.inbox("discipline2")}
        told = [n for n in notices(api, "discipline2") if n["task_id"] == task["id"] and "不再担任" in n["text"]]
        assert [n["kind"] for n in told] == ["new_task"]
        assert api.complete_raw(task["id"], "discipline2", {"founded": False, "notes": "不属实"}).status_code == 200

    def test_tasks_of_roles_kept_stay_held(self, api, cadre):
        """Adding a role, or taking away one the task is not of, leaves a held task with its holder."""
        case_id, task = verification(api)
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="multi").status_code == 200
        assert api.patch("/api/users/multi", json={"roles": ["discipline", "committee"]}).status_code == 200
        assert api.open_task(case_id, "preliminary_verification")["assignee"] == "multi"
        assert api.history(case_id)[-1]["action"] == "claim"

    def test_a_claim_in_flight_when_the_role_goes_holds_nothing(self, api, cadre, monkeypatch):
        """multi's claim was authenticated (as discipline, audit) just before the admin took discipline away: the
        claim must not commit after the role change handed the role's tasks back, leaving multi holding one."""
        _case_id, task = verification(api)
        services, claim = api.client.application.extensions["cadreflow"], tasks.claim_task

        def change_then_claim(services_, actor, task_id):
            users.update_user(services, Actor("admin", frozenset({"admin"})), "multi", roles=["audit"])
            return claim(services_, actor, task_id)

        monkeypatch.setattr(tasks, "claim_task", change_then_claim)
        assert_error(api.post(f"/api/tasks/{task['id']}/claim", as_="multi"), 403)
        assert api.get(f"/api/tasks/{task['id']}").json["assignee"] is None

    def test_losing_admin_gives_back_the_tasks_admin_alone_let_it_take(self, api, cadre):
        """An admin may claim any task: admin2 claims a discipline task, then is left with audit alone. The task
        goes back to discipline, which admin2 never held."""
        assert api.post("/api/users", json={"username": "admin2", "password": "a-brand-new-pw",
                                            "roles": ["admin"]}).status_code == 201
        login = api.client.post("/api/auth/token", json={"username": "admin2", "password": "a-brand-new-pw"})
        api.tokens["admin2"] = login.json["token"]
        case_id, task = verification(api)
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="admin2").status_code == 200
        assert api.patch("/api/users/admin2", json={"roles": ["audit"]}).status_code == 200
        assert api.open_task(case_id, "preliminary_verification")["assignee"] is None
        assert api.history(case_id)[-1]["detail"]["reason"] == "角色变更 (role removed)"


class TestRepeats:
    """A claim or a reassignment sent twice (a double click, a client's retry) is acted on once: the case's history
    (its tamper-evident record) said the task was claimed twice, or reassigned from discipline2 to discipline2, and
    the holder was told of a "new" task again."""

    def test_a_second_claim_by_the_holder_is_answered_and_not_recorded(self, api, cadre):
        case_id, task = verification(api)
        first = api.post(f"/api/tasks/{task['id']}/claim", as_="discipline")
        again = api.post(f"/api/tasks/{task['id']}/claim", as_="discipline")
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json["assignee"] == "discipline"
        assert [e["actor"] for e in api.history(case_id) if e["action"] == "claim"] == ["discipline"]

    def test_a_reassignment_to_the_holder_changes_nothing(self, api, cadre):
        case_id, task = verification(api)
        assert assign(api, task["id"], "discipline2", "discipline_head").status_code == 200
        told = len(notices(api, "discipline2"))
        again = assign(api, task["id"], "discipline2", "discipline_head")
        assert again.status_code == 200 and again.json["assignee"] == "discipline2"
        assert [(e["detail"]["from"], e["detail"]["to"]) for e in api.history(case_id) if e["action"] == "assign"] \
            == [(None, "discipline2")]
        assert len(notices(api, "discipline2")) == told

    def test_an_extension_sent_twice_extends_once_and_the_repeat_is_no_error(self, api, cadre):
        """The same extension again (a double click, a retry) answers 200 with the deadline it set, recorded once;
        it said "the new deadline must be later than the current one" (422), so its sender believed it failed."""
        case_id, task = verification(api)
        first = extend(api, task["id"], "discipline_head", until="2099-03-01")
        again = extend(api, task["id"], "discipline_head", until="2099-03-01")
        assert (first.status_code, again.status_code) == (200, 200), again.json
        assert again.json["due_at"] == first.json["due_at"]
        assert len([e for e in api.history(case_id) if e["action"] == "extend"]) == 1
        assert_error(extend(api, task["id"], "discipline_head", until="2099-02-01"), 422, fields={"until"})
