"""Pruning the finished history keeps every case behaving exactly as it would with its whole history.

Each shipped process is driven along a path that loops, twice: with pruning (as the engine runs) and
with pruning switched off; after every step both must show the same open tasks, data, outcome,
timer and diagram, and each saved state must load back (the Driver checks a round trip each step).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import workflows.engine.runtime as runtime
from tests.engine.helpers import Driver
from workflows.engine.pruning import _common_ancestor, _path_to_root

OPINIONS = ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion")


def _vetting(driver: Driver) -> None:
    driver.start(cadre_id="c1", proposed_post="县发改局局长", selection_method="competitive")
    for decision in ("return", "return", "approve"):
        for element in OPINIONS:
            driver.complete(element, opinion="positive", notes="无异议")
        driver.complete("democratic_evaluation", votes_approve=30, votes_basic=1, votes_disapprove=0)
        driver.complete("org_head_review", decision=decision, comment="")
    driver.message("vetting_objection", report="来信")
    driver.complete("verify_objection", substantiated=False, notes="不属实")
    driver.complete("committee_decision", decision="appoint")


def _admonishment(driver: Driver) -> None:
    driver.start(cadre_id="c1", trigger="complaint", summary="反映问题")
    driver.complete("intake_review", form="talk", reason="属实")
    driver.complete("conduct_talk", talk_date="2026-01-05", minutes="谈话记录")
    for rectified in ("partial", "partial", "partial", "yes"):
        driver.complete("rectification_plan", plan="整改措施")
        driver.complete("follow_up_review", rectified=rectified)


def _departure(driver: Driver) -> None:
    driver.start(cadre_id="c1", departure_reason="promotion", planned_departure_on="2030-06-30")
    driver.complete("assign_audit_team", team_lead="audit2", members="李四")
    driver.complete("audit_fieldwork", findings="minor", amount_involved=0, report_ref="审〔2026〕1号")
    for rectified in (False, False, True):
        driver.complete("rectify_findings", rectified=rectified)
    driver.complete("approve_departure", decision="approve", comment="")


PATHS: dict[str, Callable[[Driver], None]] = {
    "pre_appointment_vetting": _vetting, "admonishment": _admonishment, "departure_audit": _departure}


@pytest.mark.parametrize("key", list(PATHS))
def test_a_pruned_case_behaves_like_a_whole_one(definitions, monkeypatch, key):
    """Same open tasks, data, outcome, timer and diagram at every step, with and without pruning."""
    pruned = Driver(definitions[key])
    PATHS[key](pruned)
    monkeypatch.setattr(runtime, "prune", lambda workflow, has_event_subprocesses: 0)
    whole = Driver(definitions[key])
    PATHS[key](whole)
    assert len(pruned.steps) == len(whole.steps)
    for left, right in zip(pruned.steps, whole.steps, strict=True):
        assert sorted(t.element_id for t in left.open_tasks) == sorted(t.element_id for t in right.open_tasks)
        assert (left.data, left.completed, left.outcome) == (right.data, right.completed, right.outcome)
        assert (left.next_timer_due is None) == (right.next_timer_due is None)
        assert left.diagram == right.diagram
    assert len(pruned.steps[-2].state) < len(whole.steps[-2].state)  # and it did prune


@dataclass(eq=False)
class Node:
    """A stand-in task: the ancestor search reads nothing but `parent`."""

    parent: Node | None


@pytest.mark.parametrize("seed", range(40))
def test_common_ancestor_is_the_deepest_task_above_them_all(seed):
    """Against the definition (the deepest task on every task's path to the root), on random trees and
    random sets of tasks: deep chains, siblings, a task above another, a task given twice."""
    chance = random.Random(seed)
    tree = [Node(None)]
    for _ in range(chance.randint(1, 80)):
        tree.append(Node(chance.choice(tree[-5:] if chance.random() < 0.7 else tree)))
    tasks = chance.choices(tree, k=chance.randint(1, 12))
    common = set.intersection(*(set(map(id, _path_to_root(task))) for task in tasks))
    expected = next(task for task in _path_to_root(tasks[0]) if id(task) in common)
    assert _common_ancestor(tasks) is expected
