"""Anchors: a history rewritten consistently (every later hash and the case's head recomputed) passes the chain
check, and `cadreflow check --anchor` still names the case; the anchor file itself cannot be altered unseen."""

from __future__ import annotations

import errno
import json
import os
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from service.db.chain import GENESIS, entry_hash
from service.db.models import Case
from service.usecases.anchors import AnchorUnusable, anchor_faults, take_anchor
from tests.service.test_history_chain import HISTORY, faults_of, history_rows, tamper

KEY = b"an anchor key kept off the database server"


def rewrite_consistently(services, case_id: int) -> None:
    """What a writer of the tables can do unseen by the chain: change one entry, recompute every hash after it
    and move the case's head along."""
    rows = history_rows(services, case_id)
    forged = next(row for row in rows if row.action == "complete")
    previous, statements = GENESIS, []
    for row in rows:
        values = row._asdict()
        if row.id == forged.id:
            values["detail"] = {**row.detail, "data": {"form": "dismiss", "reason": "不予诫勉"}}
        if row.seq >= forged.seq:
            values["hash"] = entry_hash(SimpleNamespace(**values), previous)
            statements.append(update(HISTORY).where(HISTORY.c.id == row.id).values(detail=values["detail"],
                                                                                  hash=values["hash"]))
        previous = values["hash"]
    tamper(services, statements)
    with services.db.write_engine.begin() as connection:
        connection.execute(update(Case.__table__).where(Case.__table__.c.id == case_id).values(history_hash=previous))


def test_a_consistent_rewrite_passes_the_chain_and_is_named_by_the_anchor(services, three_cases):
    anchor = take_anchor(services, KEY)
    assert [head[0] for head in anchor["cases"]] == three_cases
    assert anchor_faults(services, anchor, KEY) == []
    victim = three_cases[1]
    rewrite_consistently(services, victim)
    assert faults_of(services) == []  # the chain alone cannot see it
    faults = anchor_faults(services, anchor, KEY)
    assert len(faults) == 1 and faults[0].startswith(f"case {victim}: ") and "rewritten" in faults[0]


def test_entries_added_after_the_anchor_are_ordinary_work(api, services, three_cases):
    anchor = take_anchor(services)
    case_id = three_cases[0]
    task = next(iter(api.get(f"/api/cases/{case_id}").get_json()["open_tasks"]), None)
    assert task is not None
    assert api.post(f"/api/tasks/{task['id']}/claim", as_="discipline").status_code == 200
    assert anchor_faults(services, anchor) == []


def test_deleted_entries_and_deleted_cases_are_named(services, three_cases):
    anchor = take_anchor(services)
    first, second = three_cases[0], three_cases[1]
    last = history_rows(services, first)[-1]
    tamper(services, [HISTORY.delete().where(HISTORY.c.id == last.id),
                      HISTORY.delete().where(HISTORY.c.case_id == second)])
    with services.db.write_engine.begin() as connection:
        for table in ("case_participants", "notifications", "tasks"):
            connection.exec_driver_sql(f"DELETE FROM {table} WHERE case_id = {second}")
        connection.execute(Case.__table__.delete().where(Case.__table__.c.id == second))
    faults = anchor_faults(services, anchor)
    assert [fault.split(":")[0] for fault in faults] == [f"case {first}", f"case {second}"]
    assert "is gone: entries were deleted" in faults[0] and "gone from the database" in faults[1]


@pytest.mark.parametrize("alteration", ["hash", "case", "signature", "format", "malformed", "beyond an id"])
def test_an_altered_anchor_proves_nothing(services, three_cases, alteration):
    """Whoever rewrites history would rewrite the anchor to match: its digest, and with a key its signature,
    make that show; a file that is not an anchor at all is refused the same way."""
    anchor = take_anchor(services, KEY)
    if alteration == "hash":  # the heads edited to a rewritten history's, the digest recomputed without the key
        from service.usecases import anchors

        anchor["cases"][0][2] = "0" * 64
        anchor["digest"] = anchors._digest(anchor)
    elif alteration == "case":  # edited without recomputing the digest
        anchor["cases"] = anchor["cases"][1:]
    elif alteration == "signature":
        anchor["signature"] = "f" * 64
    elif alteration == "format":
        anchor["format"] = "something else"
    elif alteration == "beyond an id":  # numbers no id column holds (the database would refuse the lookup)
        from service.usecases import anchors

        anchor["cases"][0] = [2**70, 1, anchor["cases"][0][2]]
        anchor["digest"] = anchors._digest(anchor)
        anchor.pop("signature")
        with pytest.raises(AnchorUnusable, match="malformed"):
            anchor_faults(services, anchor)
        return
    else:
        anchor["cases"][0] = [three_cases[0], "1", "x"]
    with pytest.raises(AnchorUnusable):
        anchor_faults(services, anchor, KEY)


def test_without_a_key_the_digest_still_catches_careless_edits(services, three_cases):
    anchor = take_anchor(services)
    assert "signature" not in anchor
    anchor["cases"][0][1] += 1
    with pytest.raises(AnchorUnusable, match="altered"):
        anchor_faults(services, anchor)


def test_cli_anchor_then_check_exits_one_naming_the_case_and_two_on_a_forged_anchor(app, services, three_cases,
                                                                                     tmp_path: Path):
    runner = app.test_cli_runner()
    key_file, anchor_file = tmp_path / "anchor.key", tmp_path / "heads.json"
    key_file.write_bytes(KEY + b"\n")
    taken = runner.invoke(args=["anchor", "--key-file", str(key_file), "--out", str(anchor_file)])
    assert taken.exit_code == 0, taken.output
    assert f"anchored 3 case(s) in {anchor_file}" in taken.stderr
    check = ["check", "--grace", "3600", "--anchor", str(anchor_file), "--key-file", str(key_file)]
    clean = runner.invoke(args=check)
    assert (clean.exit_code, clean.stdout.strip()) == (0, "3 case(s) checked, 0 fault(s)")

    victim = three_cases[2]
    rewrite_consistently(services, victim)
    found = runner.invoke(args=check)
    assert found.exit_code == 1
    assert f"case {victim}: " in found.stderr and "3 case(s) checked, 1 fault(s)" in found.stdout

    forged = json.loads(anchor_file.read_text())
    forged["cases"][-1][2] = history_rows(services, victim)[forged["cases"][-1][1] - 1].hash
    anchor_file.write_text(json.dumps(forged))
    refused = runner.invoke(args=check)
    assert refused.exit_code == 2 and "altered" in refused.stderr

    anchor_file.write_text("not json")
    assert runner.invoke(args=check).exit_code == 2
    key_file.write_bytes(b"short")
    assert runner.invoke(args=["anchor", "--key-file", str(key_file)]).exit_code == 2


def test_a_signed_anchor_proves_nothing_without_its_key(services, three_cases):
    """Whoever rewrites history and the anchor's heads recomputes the unkeyed digest too: only the signature shows
    it, so a signed anchor checked without its key would pass any forgery."""
    anchor = take_anchor(services, KEY)
    victim = three_cases[0]
    rewrite_consistently(services, victim)
    from service.usecases import anchors

    anchor["cases"][0][2] = history_rows(services, victim)[anchor["cases"][0][1] - 1].hash
    anchor["digest"] = anchors._digest(anchor)
    with pytest.raises(AnchorUnusable, match="needs its key"):
        anchor_faults(services, anchor)
    with pytest.raises(AnchorUnusable, match="signature does not match"):
        anchor_faults(services, anchor, KEY)


def refused(result, exit_code: int) -> str:
    """A refusal said in a message, not a traceback: the command exits `exit_code`; its stderr."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return result.stderr


def test_cli_check_of_a_signed_anchor_needs_its_key_and_a_key_needs_an_anchor(app, three_cases, tmp_path: Path):
    runner = app.test_cli_runner()
    key_file, anchor_file = tmp_path / "anchor.key", tmp_path / "heads.json"
    key_file.write_bytes(KEY)
    assert runner.invoke(args=["anchor", "--key-file", str(key_file), "--out", str(anchor_file)]).exit_code == 0
    unkeyed = refused(runner.invoke(args=["check", "--grace", "3600", "--anchor", str(anchor_file)]), 2)
    assert "needs its key (--key-file)" in unkeyed
    without_anchor = refused(runner.invoke(args=["check", "--grace", "3600", "--key-file", str(key_file)]), 2)
    assert "--key-file" in without_anchor and "--anchor" in without_anchor and "case(s) checked" not in without_anchor


def test_cli_anchor_is_written_once_and_whole(app, three_cases, tmp_path: Path, monkeypatch):
    """An existing anchor is never replaced; a folder that does not exist is a message; a write that fails
    leaves no file under the anchor's name, nor a temporary one."""
    runner = app.test_cli_runner()
    folder = tmp_path / "anchors"
    folder.mkdir()
    anchor_file = folder / "heads.json"
    assert runner.invoke(args=["anchor", "--out", str(anchor_file)]).exit_code == 0
    first = anchor_file.read_bytes()
    assert json.loads(first)["cases"]
    again = refused(runner.invoke(args=["anchor", "--out", str(anchor_file)]), 1)
    assert "exists" in again and "written once" in again
    assert anchor_file.read_bytes() == first
    missing = refused(runner.invoke(args=["anchor", "--out", str(folder / "nowhere" / "x.json")]), 1)
    assert "cannot write" in missing and "No such file or directory" in missing
    assert [path.name for path in folder.iterdir()] == ["heads.json"]

    monkeypatch.setattr(os, "replace", partial(fail, OSError(errno.ENOSPC, "No space left on device")))
    full = refused(runner.invoke(args=["anchor", "--out", str(folder / "full.json")]), 1)
    assert "No space left on device" in full
    assert [path.name for path in folder.iterdir()] == ["heads.json"]


def fail(error: Exception, *_args) -> None:
    raise error
