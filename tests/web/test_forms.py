"""JSON Schema forms: the fields they render and the typed data a submission becomes."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from service.errors import Invalid
from service.usecases.forms import TEXT_LIMIT, validate_form
from service.web.forms import fields_of, form_errors, parse_submission

SCHEMA = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "title": "决定", "enum": ["approve", "hold"], "x-enumNames": ["批准", "暂缓"]},
        "measure": {"type": "string", "title": "方式", "enum": list("abcdef")},
        "on": {"type": "string", "format": "date", "title": "日期"},
        "votes": {"type": "integer", "title": "票数", "minimum": 0},
        "amount": {"type": "number", "title": "金额"},
        "founded": {"type": "boolean", "title": "属实"},
        "lead": {"type": "string", "title": "组长", "x-user-role": "audit"},
        "cadre": {"type": "string", "title": "干部", "x-cadre": True},
        "ref": {"type": "string", "title": "文号", "maxLength": 40},
        "notes": {"type": "string", "title": "备注"},
    },
    "required": ["decision", "votes"],
}


def test_fields_follow_the_schema():
    fields = {f.name: f for f in fields_of(SCHEMA, user_choices={"lead": ["audit"]})}
    assert {n: f.kind for n, f in fields.items()} == {
        "decision": "radio", "measure": "select", "on": "date", "votes": "integer", "amount": "number",
        "founded": "boolean", "lead": "user", "cadre": "cadre", "ref": "text", "notes": "textarea"}
    assert fields["cadre"].options == [] and fields["cadre"].chosen == ""
    assert fields["decision"].options == [("approve", "批准"), ("hold", "暂缓")]
    assert fields["decision"].required and not fields["notes"].required
    assert fields["votes"].minimum == 0 and fields["lead"].options == [("audit", "audit")]


def test_values_and_bilingual_errors_come_back_beside_their_fields(app):
    with app.test_request_context("/"):
        fields = {f.name: f for f in fields_of(SCHEMA, MultiDict({"votes": "x"}), {"votes": "必填 (required)",
                                                                                   "_form": "总数不足 (too few)"})}
        assert fields["votes"].value == "x" and fields["votes"].error == "必填"
        assert form_errors({"_form": "总数不足 (too few)", "votes": "必填"}, SCHEMA) == ["总数不足"]


def test_submissions_are_typed_and_empty_inputs_left_out():
    form = MultiDict({"decision": "approve", "votes": "12", "amount": "3.5", "founded": "false", "notes": "  ",
                      "on": "2026-01-31", "unknown": "x"})
    assert parse_submission(SCHEMA, form) == {"decision": "approve", "votes": 12, "amount": 3.5, "founded": False,
                                              "on": "2026-01-31"}
    assert parse_submission(SCHEMA, MultiDict({"votes": "many"})) == {"votes": "many"}, "left for the validator"


def test_a_cadre_field_is_a_picker_naming_only_the_cadre_chosen():
    """`x-cadre`: a typeahead; its options are just the chosen cadre, so the page can name it."""
    fields = {f.name: f for f in fields_of(SCHEMA, MultiDict({"cadre": "c1"}),
                                           user_choices={"cadre": [("c1", "张三 · 县发改局")]})}
    assert fields["cadre"].kind == "cadre" and fields["cadre"].value == "c1"
    assert fields["cadre"].chosen == "张三 · 县发改局"


def errors_of(schema, data, check_rule=None):
    """The field errors validate_form raises for `data` ({} when it passes)."""
    try:
        validate_form(schema, data, lambda user, role: True, check_rule=check_rule)
    except Invalid as invalid:
        return invalid.fields
    return {}


def test_malformed_extensions_deployed_before_they_were_refused_never_fail_a_completion():
    """`x-min-sum` / `x-validate` shapes deploy now refuses: a meaningless sum is skipped, a rule is still checked
    (on the form when it names no field), instead of every completion of the task failing."""
    for min_sum in ("abc", {"fields": ["a"], "min": "x"}, {"min": 1}, {"fields": "a"}):
        assert errors_of({"type": "object", "x-min-sum": min_sum}, {"a": 0}) == {}, min_sum
    short = errors_of({"type": "object", "x-min-sum": {"fields": ["a", 3]}}, {"a": 0})
    assert short == {"a": "合计不足 (sum too small)"}
    never = lambda exprs, scope: [False] * len(exprs)  # noqa: E731 - a rule check where every rule fails
    rules = [{"expr": "False", "field": ["a"], "message": "m"}, {"expr": "False", "field": "b", "message": 5}, 7]
    assert errors_of({"type": "object", "x-validate": rules}, {}, never) == {
        "_form": "m", "b": "不符合表单规则 (a rule of the form is not met)"}
    assert errors_of({"type": "object", "x-validate": 5}, {}, never) == {}


NULLABLE = {"type": "object", "properties": {"votes": {"type": ["integer", "null"], "title": "票数"},
                                             "flag": {"type": ["boolean", "null"]},
                                             "note": {"type": ["null", "string"]}}}


def test_a_list_of_types_is_shown_typed_and_limited_by_its_first_type_that_is_not_null():
    """`"type": ["integer", "null"]` (valid JSON Schema) renders and parses as an integer, a nullable text keeps
    the text limit, and a wrong value's message names every type allowed."""
    fields = {f.name: f for f in fields_of(NULLABLE)}
    assert {n: f.kind for n, f in fields.items()} == {"votes": "integer", "flag": "boolean", "note": "textarea"}
    assert fields["note"].max_length == TEXT_LIMIT
    form = MultiDict({"votes": "3", "flag": "true", "note": "x"})
    assert parse_submission(NULLABLE, form) == {"votes": 3, "flag": True, "note": "x"}
    assert errors_of(NULLABLE, {"votes": None, "flag": None, "note": None}) == {}
    assert errors_of(NULLABLE, {"votes": "many"}) == {"votes": "类型应为整数或空值 (must be of type integer or null)"}
    assert errors_of(NULLABLE, {"note": "x" * (TEXT_LIMIT + 1)})["note"].startswith(f"最多 {TEXT_LIMIT} 个字符")


BOUNDED = {"type": "object", "properties": {"year": {"type": "integer", "minimum": 2000, "maximum": 2100},
                                            "days": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
                                            "code": {"const": "x"}}}


def test_every_bound_is_refused_in_both_languages(app):
    """A year past its `maximum` (the annual assessment's start form), a day count at an exclusive bound or any
    other keyword is refused with a message in the user's language, never jsonschema's English alone; an
    exclusive minimum says the bound itself is refused."""
    assert errors_of(BOUNDED, {"year": 2200}) == {"year": "不能大于 2100 (must be at most 2100)"}
    assert errors_of(BOUNDED, {"days": 0}) == {"days": "应大于 0 (must be greater than 0)"}
    assert errors_of(BOUNDED, {"days": 10}) == {"days": "应小于 10 (must be less than 10)"}
    errors = errors_of(BOUNDED, {"code": "y"})
    for language, wanted in (("zh", "不符合表单要求"), ("en", "'x' was expected")):
        with app.test_request_context(headers={"Cookie": f"lang={language}"}):
            assert {f.name: f.error for f in fields_of(BOUNDED, errors=errors)}["code"] == wanted


def test_a_text_shorter_than_its_minimum_length_is_told_the_length():
    """`minLength` above 1 (a designer's form): "ab" is not empty, so the message names the length wanted."""
    schema = {"type": "object", "properties": {"code": {"type": "string", "minLength": 5},
                                               "name": {"type": "string", "minLength": 1}}}
    assert errors_of(schema, {"code": "ab", "name": ""}) == {"code": "至少 5 个字符 (at least 5 characters)",
                                                             "name": "不能为空 (must not be empty)"}
