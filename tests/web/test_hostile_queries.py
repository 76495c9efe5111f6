"""Never a 500 from a query string: every GET route of the API, the pages and the portal, found in the app's
URL map, gets hostile values for every query parameter the service reads (each name its source passes to
`request.args` or a `*_arg` helper, and every input name of the templates), from a user holding every role,
signed in and holding a token."""

from __future__ import annotations

import re

from service.config import PROJECT_ROOT
from tests.api.hostile import template_field_names
from tests.web.test_web_shell import login

VALUES: dict[str, str | list[str]] = {
    "empty": "", "negative": "-1", "zero": "0", "huge-int": "9" * 400, "float": "1.5", "nan": "nan",
    "bad-date": "2026-02-30", "nul": "\x00", "long": "长" * 300, "sql": "' OR 1=1 --", "wildcards": "%_*\\",
    "markup": '<script>alert(1)</script>"', "repeated": ["a", "b", "-1"],
}
READ_IN_SOURCE = re.compile(r'(?:_arg|args\.get|args\.getlist)\(\s*"([a-z_]+)"')


def query_names() -> set[str]:
    sources = (PROJECT_ROOT / "service").rglob("*.py")
    read = {name for path in sources for name in READ_IN_SOURCE.findall(path.read_text("utf-8"))}
    return read | template_field_names()


def test_every_get_route_answers_hostile_query_strings_without_a_500(hostile_world):
    app, api = hostile_world.app, hostile_world.api
    client = api.client
    login(client, "everyone")
    names = query_names()
    assert {"page", "per_page", "q", "year", "status"} <= names, names  # the source was read
    routes = [rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ()) and rule.rule != "/logout"]
    assert len(routes) >= 70
    server_errors, answered = [], 0
    for rule in routes:
        url = hostile_world.url(rule, "GET")
        for label, value in VALUES.items():
            query = {name: value for name in names}
            response = api.call("GET", url, "everyone", query_string=query)
            answered += response.status_code < 400
            if response.status_code >= 500:
                server_errors.append((rule.rule, label, response.status_code))
            response.close()  # a static file's response holds the file open
    assert not server_errors, server_errors
    assert client.get("/inbox").status_code == 200  # still signed in: the pages were reached, not the login
    assert answered > len(routes)  # many routes answer despite the noise (unknown parameters are ignored)


def test_a_page_number_of_odd_digits_is_the_first_page_not_a_500(api, client):
    """`str.isdigit` holds for "²" and for 5000 nines, neither of which `int` takes: the pages' paging read
    them as numbers (a 500): neither is a page number, nor the access log's case number."""
    login(client, "admin")
    for url in ("/cases", "/inbox", "/notifications", "/access-log", "/account-log"):
        for page in ("²", "١", "9" * 5000):
            response = client.get(url, query_string={"page": page, "case_id": page})
            assert response.status_code < 500, (url, page, response.status_code)
