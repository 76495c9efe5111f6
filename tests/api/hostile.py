"""Hostile request bodies shared by the error-contract tests: raw bytes no JSON parser should choke on, and
JSON objects with every wrong type, size and encoding the API must refuse without a 500."""

from __future__ import annotations

from tests.api.support import ADMONISHMENT

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
