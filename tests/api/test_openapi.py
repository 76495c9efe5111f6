"""docs/openapi.yaml: valid OpenAPI 3.1, exactly the app's JSON routes and methods (/api, and the public portal's
/public; not the HTML pages), served as JSON and as a page."""

from __future__ import annotations

import re

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.api.docs import METHODS, OPENAPI, openapi_document
from service.usecases import proof
from tests.api.support import start_vetting, vetting_to_notice

IGNORED_METHODS = {"HEAD", "OPTIONS"}
JSON_PREFIXES = ("/api/", "/public/")  # the portal's pages (/report, /notices, /disclosures) are not in it


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: `<int(max=...):case_id>` becomes `{case_id}`."""
    return re.sub(r"<(?:[^<>]*:)?([^<>:]+)>", r"{\1}", rule)


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def routes(app) -> dict[tuple[str, str], str]:
    """(path, method) → endpoint of every JSON route: /api and /public."""
    return {(openapi_path(rule.rule), method.lower()): rule.endpoint for rule in app.url_map.iter_rules()
            if rule.rule.startswith(JSON_PREFIXES) for method in rule.methods - IGNORED_METHODS}


def documented(document) -> dict[tuple[str, str], str]:
    """(path, method) → operationId of every operation of the document."""
    return {(path, method): operation["operationId"] for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS}


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_is_documented_with_its_methods_and_nothing_else(app, document):
    """A route of app.url_map under /api or /public missing from the document, or an operation no route
    serves, fails."""
    served, described = routes(app), documented(document)
    assert {path for path, _method in served if path.startswith("/public/")}  # the portal is held to it too
    assert sorted(set(served) - set(described)) == []
    assert sorted(set(described) - set(served)) == []


def test_public_operations_need_no_token_and_state_their_bounds(document):
    """/public: no bearer token, tag `public`; each POST documents 413 (1 MB), 422 and 429 with Retry-After,
    and those needing a proof of work its 400 and fields."""
    shared = document["components"]["responses"]
    problems = []
    for path, item in document["paths"].items():
        for method, operation in ((m, o) for m, o in item.items() if m in METHODS and path.startswith("/public/")):
            name = f"{method} {path}"
            if operation.get("security") != [] or operation.get("tags") != ["public"]:
                problems.append(f"{name}: security {operation.get('security')}, tags {operation.get('tags')}")
            if method != "post":
                continue
            answers = {status: shared[a["$ref"].rsplit("/", 1)[-1]] if "$ref" in a else a
                       for status, a in operation["responses"].items()}
            if not {"400", "413", "422", "429"} <= set(answers):
                problems.append(f"{name}: answers {sorted(answers)}")
            elif "Retry-After" not in answers["429"].get("headers", {}):
                problems.append(f"{name}: 429 without Retry-After")
    assert problems == []
    for path in ("/public/reports", "/public/notices/{case_id}/objections"):
        post = document["paths"][path]["post"]
        assert "proof_of_work" in shared[post["responses"]["400"]["$ref"].rsplit("/", 1)[-1]]["description"]
        schema = document["components"]["schemas"][post["requestBody"]["content"]["application/json"]["schema"][
            "$ref"].rsplit("/", 1)[-1]]
        assert {"pow_challenge", "pow_nonce"} <= set(schema["properties"]), path


def test_each_operation_is_named_after_the_endpoint_serving_it(app, document):
    served = routes(app)
    assert {key: op for key, op in documented(document).items() if served.get(key) != op} == {}


def answer_schema(document, path: str, method: str, status: str) -> Draft202012Validator:
    """A validator for one documented answer's JSON body (a shared response looked up), its $refs resolved
    in the document."""
    answer = document["paths"][path][method]["responses"][status]
    where = answer["$ref"][2:].split("/") if "$ref" in answer else ["paths", path, method, "responses", status]
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1")
                       for part in [*where, "content", "application/json", "schema"])
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(
        document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:openapi#/{pointer}"}, registry=registry)


def test_public_answers_match_their_schemas(api, cadre):
    """What the portal's JSON answers is what the document says: challenge, report, tracking, notices, objection,
    述职述廉 disclosures and a rating."""
    document, client = openapi_document(), api.client

    def check(response, path, method, status):
        assert response.status_code == int(status), response.get_data(as_text=True)[:300]
        errors = list(answer_schema(document, path, method, status).iter_errors(response.json))
        assert errors == [], (path, [error.message for error in errors])
        return response.json

    def solved():
        challenge = check(client.get("/public/challenge"), "/public/challenge", "get", "200")
        return {"pow_challenge": challenge["challenge"], "pow_nonce": proof.solve(challenge["challenge"],
                                                                                  challenge["bits"])}
    report = {"subject_name": "张三", "subject_unit": "县交通局", "category": "inaction", "content": "长期不作为"}
    handed = check(client.post("/public/reports", json={**report, **solved()}), "/public/reports", "post", "201")
    check(client.get(f"/public/reports/{handed['tracking_code']}", query_string={"key": handed["query_key"]}),
          "/public/reports/{code}", "get", "200")
    case_id = vetting_to_notice(api)
    check(client.get("/public/notices"), "/public/notices", "get", "200")
    check(client.post(f"/public/notices/{case_id}/objections", json={"content": "有异议", **solved()}),
          "/public/notices/{case_id}/objections", "post", "201")
    check(client.post(f"/public/notices/{case_id}/objections", json={"content": "再次", **solved()}),
          "/public/notices/{case_id}/objections", "post", "409")
    integrity = api.post("/api/integrity-reports", as_="org_dept", json={"year": 2026}).json["opened"][0]
    api.complete(integrity, "submit_report", duty_report="履职", integrity_report="廉洁")
    api.complete(integrity, "committee_hearing", opinion="客观")
    [disclosure] = check(client.get("/public/disclosures"), "/public/disclosures", "get", "200")
    path = "/public/disclosures/{disclosure_id}"
    check(client.get(f"/public/disclosures/{disclosure['id']}"), path, "get", "200")
    check(client.post(f"/public/disclosures/{disclosure['id']}/ratings", json={"rating": "satisfied"}),
          f"{path}/ratings", "post", "201")


def test_no_key_is_written_twice():
    """A key given twice in one mapping is silently the last one to a YAML reader: one schema name for two
    shapes (a role code and a role record) made every task's `role` an object."""
    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        keys = [loader.construct_object(key, deep=True) for key, _ in node.value]
        assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})
        return loader.construct_mapping(node, deep=True)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(OPENAPI.read_text(encoding="utf-8"), Loader=Strict)  # a SafeLoader: builds plain data only


def test_staff_answers_match_their_schemas(api, cadre):
    """Answers of /api whose shape clients rely on are what the document says: a case with its open tasks,
    a task, a user, opening the year's 述职述廉 ({opened: [case id]}), ending an absence (204, no body)."""
    document = openapi_document()

    def check(response, path, method, status):
        assert response.status_code == int(status), response.get_data(as_text=True)[:300]
        assert status in document["paths"][path][method]["responses"], (path, method, status)
        if response.mimetype == "application/json":
            errors = list(answer_schema(document, path, method, status).iter_errors(response.json))
            assert errors == [], (path, [(list(error.absolute_path), error.message) for error in errors])
        return response.json

    case = start_vetting(api)
    check(api.get(f"/api/cases/{case['id']}"), "/api/cases/{case_id}", "get", "200")
    task = case["open_tasks"][0]
    check(api.get(f"/api/tasks/{task['id']}", as_="org_dept"), "/api/tasks/{task_id}", "get", "200")
    check(api.get("/api/tasks", as_="org_dept"), "/api/tasks", "get", "200")
    check(api.get("/api/users"), "/api/users", "get", "200")
    check(api.get("/api/roles"), "/api/roles", "get", "200")
    check(api.post("/api/integrity-reports", as_="org_dept", json={"year": 2026}), "/api/integrity-reports",
          "post", "200")
    api.put("/api/me/substitute", as_="discipline", json={"username": "discipline2", "until": "2030-01-01"})
    check(api.call("DELETE", "/api/me/substitute", as_="discipline"), "/api/me/substitute", "delete", "204")


def test_path_parameters_are_declared(document):
    """Each `{name}` of a path is a parameter of the path or of each of its operations."""
    components = document["components"]["parameters"]
    missing = []
    for path, item in document["paths"].items():
        for method, operation in ((m, o) for m, o in item.items() if m in METHODS):
            declared = {(components[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p)["name"]
                        for p in [*item.get("parameters", []), *operation.get("parameters", [])]}
            missing += [f"{method} {path} {name}" for name in re.findall(r"{(\w+)}", path) if name not in declared]
    assert missing == []


def test_served_as_json_and_as_a_page_without_login(app, document):
    client = app.test_client()
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.json == document
    page = client.get("/api/docs")
    html = page.get_data(as_text=True)
    page.close()
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src 'none'" in page.headers["Content-Security-Policy"]
    for (path, method), operation_id in documented(document).items():
        assert f'id="{operation_id}"' in html and path in html, (method, path)
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_docs_are_self_contained():
    """The repository's documentation names no file outside the repository."""
    root = OPENAPI.parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted(root.glob("*/README.md"))]
    assert [page.name for page in pages if "../shared" in page.read_text(encoding="utf-8")] == []
    for page in ("processes.md", "api.md", "openapi.yaml"):
        assert f"({page})" in (root / "docs" / "README.md").read_text(encoding="utf-8")


def test_every_post_a_token_holder_sends_takes_an_idempotency_key(app, document):
    """The API's POSTs behind a token honour `Idempotency-Key` (service/api/idempotency.py): each declares the
    reusable header parameter and the statuses a key may answer; the two login POSTs, which no idempotency key
    guards, do not."""
    unguarded = {"/api/auth/token", "/api/auth/password"}
    posts = {path for path, method in routes(app) if method == "post" and path.startswith("/api/")}
    declaring = {path for path in posts if {"$ref": "#/components/parameters/IdempotencyKey"}
                 in document["paths"][path]["post"].get("parameters", [])}
    assert sorted(posts - unguarded - declaring) == [] and declaring & unguarded == set()
    # What a key may answer: a bad key 400, a sending still running 409, the key used for another request 422.
    missing = [(path, status) for path in sorted(declaring) for status in ("400", "409", "422")
               if status not in document["paths"][path]["post"]["responses"]]
    assert missing == []
