"""Never a 500 from a page's form: every POST route of the browser UI and the portal, found in the app's URL
map, gets hostile form bodies from a signed-in user holding every role. Field names are every `name="..."`
in the templates plus the ones forms render from a schema; whatever the routes accept, every case still
passes `cadreflow check` afterwards."""

from __future__ import annotations

from typing import Any

from service.usecases.check import check_cases
from service.usecases.forms import TEXT_LIMIT
from tests.api.hostile import template_field_names
from tests.web.test_web_shell import csrf_token, login

# Ending the session goes last: after it the other routes would only redirect to the login page.
LAST = ("/account/password", "/logout")


def hostile_forms(fields: set[str]) -> dict[str, dict[str, Any]]:
    every = sorted(fields)
    return {
        "empty": {},
        "long-text": {name: "长" * (TEXT_LIMIT + 1) for name in every},  # past every field's limit, under the body's
        "nul": {name: "\x00" for name in every},
        "negative": {name: "-1" for name in every},
        "huge-number": {name: "9" * 400 for name in every},
        "nan": {name: "nan" for name in every},
        "bad-date": {name: "2026-02-30" for name in every},
        "markup": {name: '<script>alert(1)</script>"\'' for name in every},
        "repeated": {name: ["a", "b", "c"] for name in every},
    }


def form_routes(app: Any) -> list[Any]:
    rules = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())
             and not rule.rule.startswith(("/api/", "/public/"))]
    return sorted(rules, key=lambda rule: (rule.rule in LAST, LAST.index(rule.rule) if rule.rule in LAST else 0,
                                           rule.rule))


def signed_in(client: Any) -> str:
    """Sign in as `everyone` unless the session still holds; the session's CSRF token."""
    if client.get("/account/password").status_code != 200:
        login(client, "everyone")
    return csrf_token(client, "/account/password")


def test_every_form_route_answers_hostile_forms_without_a_500(hostile_world):
    app, client = hostile_world.app, hostile_world.app.test_client()
    routes = form_routes(app)
    assert len(routes) >= 35 and routes[-1].rule == "/logout"  # the map was read, logout last
    forms = hostile_forms(template_field_names())
    server_errors = []
    for rule in routes:
        url = hostile_world.url(rule, "POST")
        for name, form in forms.items():
            token = signed_in(client)
            response = client.post(url, data={**form, "csrf_token": token})
            if response.status_code >= 500:
                server_errors.append((rule.rule, name, response.status_code))
        bad_bytes = client.post(url, data=b"reason=%FF%FE&comment=%C0%AF&csrf_token=" + signed_in(client).encode(),
                                content_type="application/x-www-form-urlencoded")
        if bad_bytes.status_code >= 500:
            server_errors.append((rule.rule, "bad-utf8", bad_bytes.status_code))
    assert not server_errors, server_errors
    checked, faults = check_cases(app.extensions["cadreflow"])
    assert checked >= 1 and faults == []


def test_every_form_route_refuses_a_post_without_its_csrf_token(hostile_world):
    """Signed in, a form posted with no token or someone else's is refused before its route runs: 400."""
    client = hostile_world.app.test_client()
    signed_in(client)
    stranger = csrf_token(hostile_world.app.test_client())  # a valid token of another session
    for rule in form_routes(hostile_world.app):
        url = hostile_world.url(rule, "POST")
        for form in ({"reason": "x"}, {"reason": "x", "csrf_token": stranger}, {"csrf_token": ""}):
            response = client.post(url, data=form)
            assert response.status_code == 400 and "安全校验失败" in response.get_data(as_text=True), (url, form)
    assert client.get("/inbox").status_code == 200  # still signed in: the refusals ended nothing


def test_a_form_with_a_nul_character_is_refused_and_stores_nothing(hostile_world):
    """A NUL in a page's form field (PostgreSQL cannot store one) is a 422 page, on every backend."""
    client = hostile_world.app.test_client()
    token = signed_in(client)
    form = {"id": "c3", "name": "王\x00五", "unit": "县局", "post": "科长", "post_level": "middle",
            "post_started_on": "2020-01-01", "csrf_token": token}
    response = client.post("/cadres/new", data=form)
    assert response.status_code == 422 and "空字符" in response.get_data(as_text=True)
    assert hostile_world.api.get("/api/cadres/c3").status_code == 404
    assert client.post("/cadres/new", data={**form, "name": "王五"}).status_code == 302  # the same form, clean
