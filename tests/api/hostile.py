"""What the never-a-500 tests share: hostile request bodies (raw bytes no JSON parser should choke on, JSON
objects with every wrong type, size and encoding), and a world to aim them at, one app with a value for
every argument of every route in its URL map."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule

from service.config import PROJECT_ROOT
from service.usecases import logins, users
from tests.api.support import ADMONISHMENT, CaseApi, Template, app_from_template, make_api, start_admonishment
from tests.conftest import PASSWORD, ROLES

ADMONISHMENT_START = {"trigger": "complaint", "summary": "反映问题"}

HOSTILE_RAW = {
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "deep-data": b'{"data":' + b'{"a":' * 5_000 + b"1" + b"}" * 5_001,
    "bad-utf8": b'{"data": "\xff\xfe"}',
    "nan": b'{"data": {"form": NaN, "reason": "x"}, "process": NaN}',
    "infinity": b'{"case_id": Infinity, "name": "vetting_objection"}',
    "huge-number": b'{"case_id": 1e400, "data": {"votes_approve": 1e400}}',
    "huge-int": b'{"case_id": ' + b"9" * 4000 + b', "name": "vetting_objection"}',
    "duplicate-keys": b'{"data": {}, "data": []}',
    "nul-bytes": b'{"name": "\\u0000", "username": "\\u0000", "process": "\\u0000", "data": {"\\u0000": 1}}',
    "lone-surrogate-key": b'{"\\ud800": 1}',
    "bom": b'\xef\xbb\xbf{"data": {}}',
}
# Idempotency-Key headers no POST may take (a 400 each): empty, too long, inner space or tab, a quote or backslash,
# an unclosed quote, Latin-1 and DEL (a header's bytes outside visible ASCII), two keys in one header.
HOSTILE_IDEMPOTENCY_KEYS = {"empty": "", "long": "k" * 256, "quoted_long": f'"{"k" * 256}"', "space": "a b",
                            "tab": "a\tb", "quote": 'a"b', "backslash": "a\\b", "unclosed": '"open',
                            "latin1": "clé", "del": "a\x7fb", "two": "k1, k2"}
SURROGATE = "\ud800"
HOSTILE_JSON = {
    "empty": {},
    "data-null": {"data": None},
    "data-list": {"data": [1, 2]},
    "data-string": {"data": "x"},
    "data-number": {"data": 7},
    "process-int": {"process": 1, "cadre_id": 2, "data": {}},
    "process-list": {"process": [ADMONISHMENT], "cadre_id": "c1", "data": {}},
    "process-object": {"process": {"$ne": None}, "cadre_id": "c1"},
    "cadre-object": {"process": ADMONISHMENT, "cadre_id": {"$ne": None}, "data": ADMONISHMENT_START},
    "cadre-list": {"process": ADMONISHMENT, "cadre_id": ["c1"], "data": ADMONISHMENT_START},
    "case-id-bool": {"name": "vetting_objection", "case_id": True},
    "case-id-float": {"name": "vetting_objection", "case_id": 1.5},
    "case-id-negative": {"name": "vetting_objection", "case_id": -1},
    "case-id-2**63": {"name": "vetting_objection", "case_id": 2**63},
    "case-id-2**80": {"name": "vetting_objection", "case_id": 2**80},
    "name-object": {"name": {"a": 1}, "case_id": 1, "data": {}},
    "credentials-wrong-types": {"username": ["admin"], "password": {"p": 1}},
    "credentials-null": {"username": None, "password": None},
    "reason-object": {"reason": {"a": 1}},
    "reason-list": {"reason": ["x"]},
    "form-wrong-types": {"data": {"form": ["talk"], "reason": {"x": 1}}},
    "form-huge-text": {"data": {"form": "shout", "reason": "长" * 200_000}},
    "surrogate-start": {"process": ADMONISHMENT, "cadre_id": "c1",
                        "data": {"trigger": "complaint", "summary": "x" + SURROGATE}},
    "surrogate-form": {"data": {"form": "dismiss", "reason": SURROGATE}},
    "surrogate-cadre": {"name": SURROGATE, "unit": "u", "post": "p", "post_level": "staff",
                        "post_started_on": "2020-01-01"},
    "surrogate-login": {"username": SURROGATE, "password": SURROGATE},
    "cadre-bad-date": {"name": "a", "unit": "u", "post": "p", "post_level": "staff", "post_started_on": "2020-02-30"},
    "cadre-id-huge": {"id": "x" * 100_000, "name": "a", "unit": "u", "post": "p", "post_level": "staff",
                      "post_started_on": "2020-01-01"},
    "many-keys": {f"k{i}": i for i in range(5_000)},
}

# Forms drawn from a schema (cadre fields, process forms) name their inputs at run time.
SCHEMA_FIELDS = {"id", "name", "post", "post_level", "post_started_on", "proposed_post", "selection_method",
                 "trigger", "summary", "form", "data", "bpmn", "minutes", "plan", "talk_date", "amount", "date",
                 "kind", "event_on", "reported_on", "found_unreported"}


def template_field_names() -> set[str]:
    """Every input name of every template, and the ones schema-drawn forms render."""
    templates = (PROJECT_ROOT / "service").rglob("*.html")
    found = {name for path in templates for name in re.findall(r'name="([a-z_]+)"', path.read_text("utf-8"))}
    return (found | SCHEMA_FIELDS) - {"csrf_token"}


@dataclass(frozen=True)
class HostileWorld:
    """A cadre `c1`, two admonishment cases waiting for intake_review (`cases`: the first is the one case
    routes are sent to, the second holds the task the task routes are sent to, so a cancel spares it) and
    `everyone`, a user holding every role, with two tokens (`leaving` is the one a logout may end)."""

    app: Flask
    api: CaseApi
    values: dict[str, Any]
    cases: tuple[int, int]

    def url(self, rule: Rule, method: str) -> str:
        """The rule's URL with this world's value for each argument; a new argument name fails loudly."""
        missing = set(rule.arguments) - set(self.values)
        assert not missing, f"{rule.rule}: give HostileWorld a value for {sorted(missing)}"
        adapter = self.app.url_map.bind("localhost")
        return str(adapter.build(rule.endpoint, {name: self.values[name] for name in rule.arguments}, method=method))


def build_hostile_world(template: Template, folder: Path) -> HostileWorld:
    app = app_from_template(template, folder)
    api = make_api(app, template)
    api.create_cadre("c1")
    cases = (start_admonishment(api)["id"], start_admonishment(api)["id"])
    report = api.post("/api/cadres/c1/reports", as_="org_dept", json={  # on time: it opens no case
        "kind": "property", "event_on": "2020-01-01", "reported_on": "2020-01-10", "summary": "购置住房一套"})
    services = app.extensions["cadreflow"]
    users.create_user(services, "everyone", PASSWORD, list(ROLES))
    for token in ("everyone", "leaving"):
        api.tokens[token] = logins.issue_token(services, "everyone", PASSWORD)["token"]
    values = {"case_id": cases[0], "task_id": api.open_task(cases[1], "intake_review")["id"], "cadre_id": "c1",
              "key": ADMONISHMENT, "code": "org_dept", "username": "norole", "notification_id": 1,
              "disclosure_id": 1, "attachment_id": 1, "job_id": 1, "version": 1, "kind": "case_summary",
              "filename": "app.js", "report_id": report.json["id"]}
    return HostileWorld(app, api, values, cases)


@pytest.fixture(scope="module")
def hostile_world(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileWorld]:
    """One hostile world per test module (its tests may change it; other modules never see that)."""
    world = build_hostile_world(template, tmp_path_factory.mktemp("hostile-world"))
    yield world
    world.app.extensions["cadreflow"].db.dispose()
