"""Parsed process versions are bounded (DEFINITION_CACHE_SIZE): a designer deploying version after version does not
grow every web and worker process without end, and a version dropped from the cache is parsed again from its row,
so its cases go on as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.usecases import context
from tests.api.support import CaseApi, Template, make_api, own_app
from tests.conformance.bpmn import LANE, definitions, end, flow, start, user

SIZE = 2


def version(number: int) -> bytes:
    """A one-task process whose task's form title names its version: each deploy has content of its own."""
    schema = {"type": "object", "title": f"版本 {number}", "properties": {"ok": {"type": "boolean"}},
              "required": ["ok"]}
    return definitions("many", start() + user("task", schema) + end() + flow("start", "task") + flow("task", "end"),
                       lanes={LANE: ["task"]})


@pytest.fixture
def small_cache_app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    yield from own_app(template, tmp_path / "small-cache", DEFINITION_CACHE_SIZE=SIZE)


@pytest.fixture
def small_cache_api(small_cache_app: Flask, template: Template) -> CaseApi:
    return make_api(small_cache_app, template)


def deploy_and_start(api: CaseApi, number: int) -> dict:
    response = api.post("/api/processes/many/versions", as_="designer", data=version(number),
                        content_type="application/xml")
    assert response.status_code == 201, response.json
    if number == 1:
        assert api.put("/api/processes/many/starters", json={"roles": [LANE]}).status_code == 200
    return api.start("many", "c1", as_=LANE)


def test_the_cache_keeps_the_versions_used_last_and_parses_a_dropped_one_again(small_cache_app, small_cache_api,
                                                                               monkeypatch):
    api, cache = small_cache_api, small_cache_app.extensions["cadreflow"].definitions
    parsed: list[str] = []
    real = context.compile_process
    monkeypatch.setattr(context, "compile_process", lambda key, *rest: parsed.append(key) or real(key, *rest))
    api.create_cadre("c1")
    cases = [deploy_and_start(api, number) for number in (1, 2, 3)]
    assert len(cache) <= SIZE, "every deployed version stayed parsed"
    parsed.clear()
    first = api.open_task(cases[0]["id"], "task")
    shown = api.get(f"/api/tasks/{first['id']}", as_=LANE)
    assert shown.status_code == 200, shown.json
    assert shown.json["form"]["title"] == "版本 1", "the version parsed again is not the case's own"
    assert parsed.count("many") == 1, "the dropped version was not parsed again, or parsed more than once"
    done = api.complete(cases[0]["id"], "task", ok=True)
    assert done["status"] == "completed", done
    assert len(cache) <= SIZE
