"""ISSUE 6 — learning records: recording, yearly compliance against the minimums, the cadre view, CSV import."""

from __future__ import annotations

import io

import pytest

from tests.api.support import assert_error

MINIMUMS = {"group_study_days": 12, "elective_hours": 40, "online_hours": 60}
HEADER = "cadre_id,kind,date,amount,source\n"


def record(api, cadre_id="c1", kind="group_study_days", day="2025-03-01", amount=1, source="县委党校", as_="org_dept"):
    return api.post(f"/api/cadres/{cadre_id}/learning", as_=as_,
                    json={"kind": kind, "date": day, "amount": amount, "source": source})


def add(api, *entries, cadre_id="c1"):
    for kind, day, amount in entries:
        response = record(api, cadre_id, kind, day, amount)
        assert response.status_code == 201, response.json


def learning(api, cadre_id="c1", **params):
    response = api.get(f"/api/cadres/{cadre_id}/learning", query_string=params)
    assert response.status_code == 200, response.json
    return response.json


def year_of(api, year, cadre_id="c1"):
    found = [y for y in learning(api, cadre_id, year=year)["compliance"] if y["year"] == year]
    assert len(found) == 1, found
    return found[0]


def import_csv(api, text, as_="org_dept", encoding="utf-8"):
    return api.post("/api/learning/import", as_=as_, data=text.encode(encoding), content_type="text/csv")


def reason_names(reason, field):
    """A refusal reason (text or {field: message}) that points at `field`."""
    if isinstance(reason, dict):
        return field in reason and all(isinstance(v, str) and v for v in reason.values())
    return isinstance(reason, str) and field in reason


# Recording.

def test_record_is_created_and_listed(api, cadre):
    """POST (org_dept) → 201 with the record; GET lists it with the year's compliance."""
    response = record(api, amount=2.5, source="市委党校")
    assert response.status_code == 201, response.json
    created = response.json
    assert {k: created[k] for k in ("cadre_id", "kind", "date", "amount", "source")} == {
        "cadre_id": "c1", "kind": "group_study_days", "date": "2025-03-01", "amount": 2.5, "source": "市委党校"}
    shown = learning(api)
    assert [r["id"] for r in shown["records"]] == [created["id"]]
    assert shown["compliance"][0]["year"] == 2025
    assert shown["compliance"][0]["totals"]["group_study_days"] == 2.5


@pytest.mark.parametrize(("body", "bad"), [
    ({"kind": "reading_hours", "date": "2025-03-01", "amount": 1}, "kind"),
    ({"kind": "online_hours", "date": "2025-02-30", "amount": 1}, "date"),
    ({"kind": "online_hours", "date": "01/03/2025", "amount": 1}, "date"),
    ({"kind": "online_hours", "date": "2025-03-01", "amount": 0}, "amount"),
    ({"kind": "online_hours", "date": "2025-03-01", "amount": -2}, "amount"),
    ({"kind": "online_hours", "date": "2025-03-01", "amount": "5"}, "amount"),
    ({"kind": "online_hours", "date": "2025-03-01"}, "amount"),
    ({"kind": "online_hours", "date": "2025-03-01", "amount": 1, "extra": 1}, "extra"),
])
def test_bad_records_are_422(api, cadre, body, bad):
    """A bad kind, date or amount (non-numeric, zero, negative, missing) or an extra field → 422 on it."""
    error = assert_error(api.post("/api/cadres/c1/learning", as_="org_dept", json=body), 422)
    assert bad in error["fields"], error
    assert learning(api)["records"] == []


def test_records_are_for_org_dept_and_known_cadres(api, cadre):
    """discipline or designer → 403; unknown cadre → 404 (record and list); anyone may read."""
    assert_error(record(api, as_="discipline"), 403)
    assert_error(record(api, as_="designer"), 403)
    assert_error(record(api, cadre_id="ghost"), 404)
    assert_error(api.get("/api/cadres/ghost/learning"), 404)
    assert api.get("/api/cadres/c1/learning", as_="discipline").status_code == 200
    assert learning(api)["records"] == []


# Compliance.

def test_exact_minimums_are_compliant(api, cadre):
    """Exactly 12 days, 40 elective hours and 60 online hours in a year → compliant, no shortfalls."""
    add(api, ("group_study_days", "2025-01-10", 5), ("group_study_days", "2025-12-31", 7),
        ("elective_hours", "2025-04-01", 40), ("online_hours", "2025-05-01", 30.5),
        ("online_hours", "2025-06-01", 29.5))
    year = year_of(api, 2025)
    assert year["totals"] == MINIMUMS
    assert year["compliant"] is True and year["shortfalls"] == {}
    assert year["minimums"] == MINIMUMS


def test_just_short_is_not_compliant_with_the_shortfall(api, cadre):
    """11.5 group study days (others met) → not compliant; the shortfall is 0.5 days and nothing else."""
    add(api, ("group_study_days", "2025-01-10", 11.5), ("elective_hours", "2025-04-01", 40),
        ("online_hours", "2025-05-01", 60))
    year = year_of(api, 2025)
    assert year["compliant"] is False and year["shortfalls"] == {"group_study_days": 0.5}


def test_every_shortfall_is_listed(api, cadre):
    """A year with a little of each kind lists the missing amount of each."""
    add(api, ("group_study_days", "2025-01-10", 2), ("elective_hours", "2025-04-01", 39.75),
        ("online_hours", "2025-05-01", 10))
    year = year_of(api, 2025)
    assert year["compliant"] is False
    assert year["shortfalls"] == {"group_study_days": 10, "elective_hours": 0.25, "online_hours": 50}


def test_years_are_counted_apart(api, cadre):
    """Records count for the calendar year of their date: Dec 31 and Jan 1 fall in different years."""
    add(api, ("group_study_days", "2024-12-31", 12), ("group_study_days", "2025-01-01", 1),
        ("elective_hours", "2024-06-01", 40), ("online_hours", "2024-07-01", 60))
    assert year_of(api, 2024)["compliant"] is True
    assert year_of(api, 2025)["totals"]["group_study_days"] == 1
    shown = learning(api)
    assert [y["year"] for y in shown["compliance"]] == [2025, 2024]
    assert len(shown["records"]) == 4


def test_year_filter_gives_that_years_records(api, cadre):
    """?year= lists only that year's records and its compliance; a bad year → 400."""
    add(api, ("group_study_days", "2024-12-31", 3), ("online_hours", "2025-01-01", 5))
    only = learning(api, year=2025)
    assert [(r["date"], r["kind"]) for r in only["records"]] == [("2025-01-01", "online_hours")]
    assert [y["year"] for y in only["compliance"]] == [2025]
    assert_error(api.get("/api/cadres/c1/learning", query_string={"year": "abc"}), 400, fields={"year"})


def test_cadre_view_includes_learning(api, cadre):
    """GET /api/cadres/<id> has `learning`: each year's compliance."""
    assert api.cadre()["learning"] == []
    add(api, ("group_study_days", "2025-01-10", 12), ("elective_hours", "2025-04-01", 40))
    shown = api.cadre()["learning"]
    assert [y["year"] for y in shown] == [2025]
    assert shown[0]["compliant"] is False and shown[0]["shortfalls"] == {"online_hours": 60}


# CSV import.

MIXED_CSV = HEADER + (
    "c1,group_study_days,2025-03-01,5,县委党校\n"      # 2 imported
    "ghost,group_study_days,2025-03-01,5,x\n"          # 3 unknown cadre
    "c1,reading_hours,2025-03-01,5,x\n"                # 4 bad kind
    "c1,online_hours,2025-02-30,5,x\n"                 # 5 bad date
    "c1,online_hours,2025/03/01,5,x\n"                 # 6 bad date format
    "c1,online_hours,2025-03-01,abc,x\n"               # 7 non-numeric
    "c1,online_hours,2025-03-01,0,x\n"                 # 8 zero
    "c1,online_hours,2025-03-01,-3,x\n"                # 9 negative
    "c1,elective_hours,2025-04-01,40,网络学院\n"        # 10 imported
    "c1,online_hours,2025-05-01,,x\n"                  # 11 empty amount
)
MIXED_REFUSED = {3: "cadre_id", 4: "kind", 5: "date", 6: "date", 7: "amount", 8: "amount", 9: "amount", 11: "amount"}


def check_mixed_report(api, response):
    assert response.status_code == 200, response.json
    report = response.json
    assert (report["imported"], report["refused"]) == (2, len(MIXED_REFUSED))
    rows = {row["line"]: row for row in report["rows"]}
    assert sorted(rows) == list(range(2, 12))
    for line in (2, 10):
        assert rows[line]["status"] == "imported" and not rows[line].get("reason")
    for line, field in MIXED_REFUSED.items():
        assert rows[line]["status"] == "refused", rows[line]
        assert reason_names(rows[line].get("reason"), field), rows[line]
    records = learning(api)["records"]
    assert sorted((r["kind"], r["amount"], r["source"]) for r in records) == [
        ("elective_hours", 40, "网络学院"), ("group_study_days", 5, "县委党校")]


def test_csv_import_reports_each_row_and_imports_the_good_ones(api, cadre):
    """text/csv body: good rows imported, each refused row with its line and a reason naming the field."""
    check_mixed_report(api, import_csv(api, MIXED_CSV))


def test_csv_import_as_a_multipart_file(api, cadre):
    """The same CSV uploaded as a multipart file gives the same report."""
    response = api.post("/api/learning/import", as_="org_dept", content_type="multipart/form-data",
                        data={"file": (io.BytesIO(MIXED_CSV.encode()), "learning.csv")})
    check_mixed_report(api, response)


def test_csv_import_refuses_nan_and_infinite_amounts(api, cadre):
    """Amounts `nan`, `inf`, `1e999` are non-numeric: refused per row, the good row still imported, never a 500."""
    text = HEADER + ("c1,online_hours,2025-03-01,nan,x\nc1,online_hours,2025-03-01,inf,x\n"
                     "c1,online_hours,2025-03-01,1e999,x\nc1,online_hours,2025-03-01,7,x\n")
    response = import_csv(api, text)
    assert response.status_code == 200, response.get_data()[:300]
    assert (response.json["imported"], response.json["refused"]) == (1, 3)
    assert [row["status"] for row in response.json["rows"]] == ["refused", "refused", "refused", "imported"]
    assert year_of(api, 2025)["totals"]["online_hours"] == 7


def test_csv_with_bom_crlf_and_extra_spaces(api, cadre):
    """A UTF-8 BOM, CRLF line ends, padded values and no source column are all fine."""
    text = "\ufeffcadre_id,kind,date,amount\r\n c1 , online_hours , 2025-03-01 , 60 \r\n"
    response = import_csv(api, text)
    assert response.status_code == 200, response.json
    assert (response.json["imported"], response.json["refused"]) == (1, 0)
    assert year_of(api, 2025)["totals"]["online_hours"] == 60


def test_csv_import_counts_toward_compliance(api, cadre):
    """Imported rows make a year compliant exactly at the minimums."""
    text = HEADER + "c1,group_study_days,2025-03-01,12,党校\nc1,elective_hours,2025-04-01,40,网院\n" \
                    "c1,online_hours,2025-05-01,60,在线\n"
    assert import_csv(api, text).json["imported"] == 3
    assert year_of(api, 2025)["compliant"] is True
    assert api.cadre()["learning"][0]["compliant"] is True


@pytest.mark.parametrize("text", [
    "cadre_id,kind,date\nc1,online_hours,2025-03-01\n",
    "id,type,day,hours\nc1,online_hours,2025-03-01,5\n",
    "",
    "just some text without commas\n",
], ids=["no-amount", "wrong-names", "empty", "not-csv"])
def test_csv_missing_columns_is_422(api, cadre, text):
    """A CSV without the needed columns → 422 with the error shape; nothing imported."""
    assert_error(import_csv(api, text), 422)
    assert learning(api)["records"] == []


def test_unreadable_csv_is_422_naming_its_line_and_imports_nothing(api, cadre):
    """A cell past the CSV reader's field limit makes the file unreadable: 422 naming the line, not a 500;
    the good row before it is not imported either (the file is read whole before anything is written)."""
    text = HEADER + "c1,group_study_days,2025-03-01,5,县委党校\n" + f"c1,online_hours,2025-03-01,7,{'长' * 200_000}\n"
    error = assert_error(import_csv(api, text), 422, fields={"file"})
    assert "line 3" in error["fields"]["file"], error
    assert learning(api)["records"] == []


def test_csv_not_utf8_is_400(api, cadre):
    """A GBK-encoded CSV (not UTF-8) → 400; nothing imported."""
    text = HEADER + "c1,group_study_days,2025-03-01,5,县委党校\n"
    assert_error(import_csv(api, text, encoding="gbk"), 400)
    response = api.post("/api/learning/import", as_="org_dept", content_type="multipart/form-data",
                        data={"file": (io.BytesIO(text.encode("gbk")), "learning.csv")})
    assert_error(response, 400)
    assert learning(api)["records"] == []


@pytest.mark.parametrize("user", ["discipline", "org_head", "designer", "audit"])
def test_csv_import_is_for_org_dept(api, cadre, user):
    """Other roles → 403, nothing imported."""
    assert_error(import_csv(api, HEADER + "c1,online_hours,2025-03-01,5,x\n", as_=user), 403)
    assert learning(api)["records"] == []


def test_csv_import_refuses_a_file_with_a_nul_whole(api, cadre):
    """A NUL in any cell (PostgreSQL cannot store one; SQLite would): 422 naming its line, and no row of the file
    imported, as a text/csv body or as a multipart file."""
    text = HEADER + "c1,online_hours,2025-03-01,2,good row\nc1,online_hours,2025-03-02,3,bad\x00source\n"
    for response in (import_csv(api, text),
                     api.post("/api/learning/import", as_="org_dept", content_type="multipart/form-data",
                              data={"file": (io.BytesIO(text.encode()), "learning.csv")})):
        body = assert_error(response, 422)
        assert "line 3" in body["message"] and "NUL" in body["message"], body
    assert learning(api)["records"] == []
