"""Validate submitted data against a task's or a process's JSON Schema form.

Messages are Chinese first with English after, keyed by field, so a client can show each one
beside its input. Besides JSON Schema, three CadreFlow keywords are checked: `x-user-role` (the
value names an active user holding that role), `x-min-sum` (listed fields add up to `min`) and
`x-validate` (rules `{expr, field, message}`: a sandboxed expression over the case data and the
submitted fields that must hold, e.g. a mandatory rotation may not be answered with `keep`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from service.errors import Invalid

_FORMATS = FormatChecker(formats=("date",))
UserHasRole = Callable[[str, str], bool]
RuleCheck = Callable[[str, dict[str, Any]], bool]


def validate_form(schema: dict[str, Any], data: Any, user_has_role: UserHasRole,
                  check_rule: RuleCheck | None = None, case_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the data if it fits the schema, else raise Invalid with a message per field."""
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object (数据必须是 JSON 对象)", {"data": "必须是对象 (must be an object)"})
    fields: dict[str, str] = {}
    for error in Draft202012Validator(schema, format_checker=_FORMATS).iter_errors(data):
        for name in _fields_of(error):
            fields.setdefault(name, _message(error, schema))
    fields.update(_custom_errors(schema, data, user_has_role, fields))
    if not fields and check_rule is not None:
        fields.update(_rule_errors(schema, {**(case_data or {}), **data}, check_rule))
    if fields:
        raise Invalid("the form has errors (表单填写有误)", fields)
    return data


def _fields_of(error: ValidationError) -> list[str]:
    if error.validator == "required":
        return [error.message.split("'")[1]]
    if error.validator == "additionalProperties":
        return sorted(set(error.instance) - set(error.schema.get("properties", {}))) or ["_form"]
    if error.path:
        return [str(error.path[0])]
    return ["_form"]


def _message(error: ValidationError, schema: dict[str, Any]) -> str:
    kind = error.validator
    if kind == "required":
        return "必填 (required)"
    if kind == "additionalProperties":
        return "不是此表单的字段 (not a field of this form)"
    if kind == "type":
        return f"类型应为 {error.validator_value} (must be of type {error.validator_value})"
    if kind == "enum":
        options = ", ".join(map(str, error.validator_value))
        return f"取值无效，可选：{options} (must be one of: {options})"
    if kind == "minLength":
        return "不能为空 (must not be empty)"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"不能小于 {error.validator_value} (must be at least {error.validator_value})"
    if kind == "pattern":
        return "只能使用字母、数字和 _ . - (letters, digits, _ . - only)"
    if kind == "format":
        return f"格式应为 {error.validator_value}，如 2026-01-31 (must be a {error.validator_value})"
    return f"{error.message}"


def _custom_errors(schema: dict[str, Any], data: dict[str, Any], user_has_role: UserHasRole,
                   known: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, prop in schema.get("properties", {}).items():
        role = prop.get("x-user-role") if isinstance(prop, dict) else None
        value = data.get(name)
        if role and name not in known and isinstance(value, str) and not user_has_role(value, role):
            errors[name] = f"不是角色 {role} 的有效用户 (not an active user with role {role})"
    min_sum = schema.get("x-min-sum")
    if min_sum and not known:
        total = sum(v for f in min_sum["fields"] if isinstance(v := data.get(f, 0), int | float))
        if total < min_sum.get("min", 1):
            for name in min_sum["fields"]:
                errors[name] = min_sum.get("message", "合计不足 (sum too small)")
    return errors


def _rule_errors(schema: dict[str, Any], scope: dict[str, Any], check_rule: RuleCheck) -> dict[str, str]:
    return {rule["field"]: rule["message"] for rule in schema.get("x-validate", [])
            if not check_rule(rule["expr"], scope)}
