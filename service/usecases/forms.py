"""Validate submitted data against a task's or a process's JSON Schema form.

Messages are Chinese first with English after, keyed by field, so a client can show each one
beside its input. Besides JSON Schema, four CadreFlow keywords are checked: `x-user-role` (the
value names an active user holding that role), `x-cadre` (the value names a registered cadre),
`x-min-sum` (listed fields add up to `min`) and
`x-validate` (rules `{expr, field, message}`: a sandboxed expression over the case data and the
submitted fields that must hold, e.g. a mandatory rotation may not be answered with `keep`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from jsonschema.exceptions import ValidationError
from referencing.exceptions import Unresolvable

from service.errors import Invalid, ServiceError
from workflows.engine import FormCheckTimeout, form_errors

UserHasRole = Callable[[str, str], bool]
CadreExists = Callable[[str], bool]
RuleCheck = Callable[[list[str], dict[str, Any]], list[bool]]  # a form's rules at once: whether each holds
TEXT_LIMIT = 2000  # the length of a text field whose form sets no maxLength
FIRST_DAY = date(1949, 10, 1)  # no date a form asks for lies before this one
YEARS_AHEAD = 10  # nor more than this many years after today
# The dates a query filter, a scan's day, a deadline or an absence may name: wider than a form's (a what-if
# scan of 2040, a deadline of 2099), and far from where date arithmetic overflows (9999-12-31 plus a day).
REACH = (FIRST_DAY, date(2999, 12, 31))


def with_limits(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with a `maxLength` on every free text field that has none (TEXT_LIMIT), so no input is
    unbounded; the web form renders the same limit as the input's `maxlength`."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return schema
    limited = {}
    for name, prop in properties.items():
        if (isinstance(prop, dict) and primary_type(prop) == "string" and "maxLength" not in prop
                and "enum" not in prop and "format" not in prop):
            prop = {**prop, "maxLength": TEXT_LIMIT}
        limited[name] = prop
    return {**schema, "properties": limited}


def fit_text(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every free text longer than its field in `schema` allows (`with_limits`) shortened to fit,
    ending in "…". For the start data a step derives for a child case: a prefix and a parent's field at its
    own limit (a public report takes 20,000 characters, an allegation 2,000) would otherwise refuse the
    child, and with it the parent's whole step. The parent, linked to the child, keeps the whole text."""
    properties = with_limits(schema).get("properties", {})
    fitted = dict(data)
    for name, value in data.items():
        prop = properties.get(name) if isinstance(properties, dict) else None
        limit = prop.get("maxLength") if isinstance(prop, dict) else None
        if isinstance(value, str) and isinstance(limit, int) and limit > 0:
            fitted[name] = shorten(value, limit)
    return fitted


def shorten(text: str, limit: int) -> str:
    """`text` itself when it has at most `limit` characters, else its start ending in "…", `limit` in all."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def primary_type(prop: dict[str, Any]) -> str | None:
    """The type a field is shown and typed as: its `type`, or of a list of types (["string", "null"], valid
    JSON Schema) the first that is not null."""
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((each for each in kind if each != "null"), None)
    return kind if isinstance(kind, str) else None


def date_range(today: date | None = None) -> tuple[date, date]:
    """The dates a form accepts: from FIRST_DAY to YEARS_AHEAD years after today."""
    today = today or date.today()
    return FIRST_DAY, today.replace(year=today.year + YEARS_AHEAD, day=min(today.day, 28))


def out_of_range(day: date, bounds: tuple[date, date] | None = None) -> str | None:
    """Why a date cannot be meant (outside `bounds`, by default a form's `date_range()`), or None."""
    first, last = bounds or date_range()
    if first <= day <= last:
        return None
    first_on, last_on = first.isoformat(), last.isoformat()
    return f"日期应在 {first_on} 至 {last_on} 之间 (must lie between {first_on} and {last_on})"


def within_reach(day: date, name: str, error: type[ServiceError] = Invalid) -> date:
    """`day`, if a query filter, a scan, a deadline or an absence may name it (REACH); else `error` naming it."""
    if (problem := out_of_range(day, REACH)) is not None:
        raise error(f"{name} is out of range ({name} 超出范围)", {name: problem})
    return day


# The time a shipped form's check may take (a cadre's record, a personal report): fixed schemas of a few fields.
SHIPPED_FORM_SECONDS = 1.0


def validate_form(schema: dict[str, Any], data: Any, user_has_role: UserHasRole,
                  check_rule: RuleCheck | None = None, case_data: dict[str, Any] | None = None,
                  cadre_exists: CadreExists | None = None, seconds: float = SHIPPED_FORM_SECONDS) -> dict[str, Any]:
    """Return the data if it fits the schema, else raise Invalid with a message per field. `seconds`: how long
    the JSON Schema check may take (a designer's form: the script time limit, `form_seconds`)."""
    if not isinstance(data, dict):
        raise Invalid("data must be a JSON object (数据必须是 JSON 对象)", {"data": "必须是对象 (must be an object)"})
    fields: dict[str, str] = {}
    schema = with_limits(schema)
    for error in _schema_errors(schema, data, seconds):
        for name in _fields_of(error):
            fields.setdefault(name, _message(error, schema))
    fields.update(_date_errors(schema, data, fields))
    fields.update(_custom_errors(schema, data, user_has_role, fields))
    fields.update(_cadre_errors(schema, data, cadre_exists, fields))
    if not fields and check_rule is not None:
        fields.update(_rule_errors(schema, {**(case_data or {}), **data}, check_rule))
    if fields:
        raise Invalid("the form has errors (表单填写有误)", fields)
    return data


BROKEN_FORM = ("此表单的结构有误，无法校验所填内容，请联系流程设计员 "
               "(the form's schema is broken, so no data can be checked against it; ask the process designer)")


SLOW_FORM = ("按此表单校验所填内容超过时限，已停止，请联系流程设计员 "
             "(checking the data against this form ran past its time limit and was stopped; ask the process designer)")


def form_seconds(settings: dict[str, Any]) -> float:
    """How long checking data against a designer's form may take: as long as one of its scripts
    (SCRIPT_TIMEOUT_SECONDS); the check runs in the service process, outside the executors' limits."""
    return float(settings["SCRIPT_TIMEOUT_SECONDS"])


def _schema_errors(schema: dict[str, Any], data: dict[str, Any], seconds: float) -> list[ValidationError]:
    """What JSON Schema finds wrong with `data`. Deploy refuses `$ref`s that loop or lead nowhere; of a form
    deployed before it did, the data is refused with a message, never a 500. A check past its time limit is
    refused too: a form whose check explodes (nested `unevaluatedProperties`) or data large enough to make an
    ordinary one slow must not hold a web thread, or a step waiting on a call activity, for minutes."""
    try:
        return form_errors(schema, data, seconds)
    except (Unresolvable, RecursionError):
        raise Invalid("the form cannot be checked (表单无法校验)", {"_form": BROKEN_FORM}) from None
    except FormCheckTimeout:
        raise Invalid("the form's check ran past its time limit (表单校验超时)", {"_form": SLOW_FORM}) from None


def _fields_of(error: ValidationError) -> list[str]:
    if error.validator == "required":
        return [error.message.split("'")[1]]
    if error.validator == "additionalProperties":
        return sorted(set(error.instance) - set(error.schema.get("properties", {}))) or ["_form"]
    if error.path:
        return [str(error.path[0])]
    return ["_form"]


DATE_MESSAGE = "日期格式应为 年-月-日，如 2026-01-31 (must be a date like 2026-01-31)"
TYPE_NAMES = {"integer": "整数", "number": "数字", "string": "文字", "boolean": "是或否", "object": "对象",
              "array": "列表", "null": "空值"}
# Messages that depend on nothing but the keyword (the only format checked is `date`).
_FIXED = {"required": "必填 (required)", "additionalProperties": "不是此表单的字段 (not a field of this form)",
          "minLength": "不能为空 (must not be empty)", "format": DATE_MESSAGE}
LEFT_OUT = "按所选的其他选项，此项应留空 (must be left out for the choices made)"
# Messages that name the keyword's bound.
_BOUNDS = {"maxLength": "最多 {0} 个字符 (at most {0} characters)", "minimum": "不能小于 {0} (must be at least {0})",
           "exclusiveMinimum": "应大于 {0} (must be greater than {0})", "maximum": "不能大于 {0} (must be at most {0})",
           "exclusiveMaximum": "应小于 {0} (must be less than {0})"}


def _message(error: ValidationError, schema: dict[str, Any]) -> str:
    kind, value = error.validator, error.validator_value
    if kind == "minLength" and isinstance(value, int) and value > 1:  # longer than empty, still too short
        return f"至少 {value} 个字符 (at least {value} characters)"
    if kind in _FIXED:
        return _FIXED[kind]
    if kind == "type":  # one type, or a list of them
        types = [str(each) for each in (value if isinstance(value, list) else [value])]
        return f"类型应为{'或'.join(TYPE_NAMES.get(t, t) for t in types)} (must be of type {' or '.join(types)})"
    if kind == "enum":
        options = ", ".join(map(str, value))
        return f"取值无效，可选：{options} (must be one of: {options})"
    if kind in _BOUNDS:
        return _BOUNDS[kind].format(value)
    if kind == "not" and value == {}:  # a field no value may fill: a form's if/then leaves it out for some choice
        return LEFT_OUT
    if kind == "pattern":  # a form may say in words what its pattern wants
        said = error.schema.get("x-pattern-message")
        return said if isinstance(said, str) and said else "格式不正确 (does not have the required format)"
    return f"不符合表单要求 ({error.message})"  # JSON Schema says what in English only


def _date_errors(schema: dict[str, Any], data: dict[str, Any], known: dict[str, str]) -> dict[str, str]:
    """Dates that parse but cannot be meant (e.g. a talk on 2099-01-01): outside `date_range()`."""
    errors = {}
    for name, prop in schema.get("properties", {}).items():
        value = data.get(name)
        if not (isinstance(prop, dict) and prop.get("format") == "date" and isinstance(value, str)) or name in known:
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            errors[name] = DATE_MESSAGE
            continue
        if (problem := out_of_range(day)) is not None:
            errors[name] = problem
    return errors


def _custom_errors(schema: dict[str, Any], data: dict[str, Any], user_has_role: UserHasRole,
                   known: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, prop in schema.get("properties", {}).items():
        role = prop.get("x-user-role") if isinstance(prop, dict) else None
        value = data.get(name)
        if isinstance(role, str) and role and name not in known and isinstance(value, str) \
                and not user_has_role(value, role):
            errors[name] = f"不是角色 {role} 的有效用户 (not an active user with role {role})"
    if not known:
        errors.update(_min_sum_errors(schema.get("x-min-sum"), data))
    return errors


def _min_sum_errors(spec: Any, data: dict[str, Any]) -> dict[str, str]:
    """`x-min-sum` {fields, min, message}. Deploy refuses other shapes; one deployed before it did is skipped
    rather than failing every completion of the task."""
    fields = spec.get("fields") if isinstance(spec, dict) else None
    minimum = spec.get("min", 1) if isinstance(spec, dict) else None
    if not isinstance(fields, list) or isinstance(minimum, bool) or not isinstance(minimum, int | float):
        return {}
    names = [name for name in fields if isinstance(name, str)]
    total = sum(v for name in names if isinstance(v := data.get(name, 0), int | float))
    if total >= minimum:
        return {}
    message = spec.get("message")
    return dict.fromkeys(names, message if isinstance(message, str) else "合计不足 (sum too small)")


def _cadre_errors(schema: dict[str, Any], data: dict[str, Any], cadre_exists: CadreExists | None,
                  known: dict[str, str]) -> dict[str, str]:
    if cadre_exists is None:
        return {}
    return {name: "干部不存在 (no such cadre)" for name, prop in schema.get("properties", {}).items()
            if isinstance(prop, dict) and prop.get("x-cadre") and name not in known
            and isinstance(data.get(name), str) and not cadre_exists(data[name])}


def _rule_errors(schema: dict[str, Any], scope: dict[str, Any], check_rule: RuleCheck) -> dict[str, str]:
    """Failed `x-validate` rules by field. Deploy refuses malformed rules; of one deployed before it did, the
    expression is still checked (it is the rule), its error put on the form when it names no field."""
    rules = schema.get("x-validate")
    checked = [rule for rule in (rules if isinstance(rules, list) else [])
               if isinstance(rule, dict) and isinstance(rule.get("expr"), str)]
    errors: dict[str, str] = {}
    for rule, holds in zip(checked, check_rule([rule["expr"] for rule in checked], scope), strict=True):
        if not holds:
            field, message = rule.get("field"), rule.get("message")
            errors[field if isinstance(field, str) else "_form"] = (
                message if isinstance(message, str) else "不符合表单规则 (a rule of the form is not met)")
    return errors
