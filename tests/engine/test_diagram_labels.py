"""The shipped diagrams are readable: no label is drawn over another label, a shape or a line (issue 13).

Only labels with bounds in the diagram interchange are checked (task names sit inside their boxes)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from lxml import etree

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
DI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
WAYPOINT = "{http://www.omg.org/spec/DD/20100524/DI}waypoint"
Box = tuple[float, float, float, float]  # x1, y1, x2, y2


def _box(bounds: etree._Element) -> Box:
    x, y = float(bounds.get("x")), float(bounds.get("y"))
    return x, y, x + float(bounds.get("width")), y + float(bounds.get("height"))


def _overlap(a: Box, b: Box, margin: float = 1) -> bool:
    return a[0] < b[2] - margin and b[0] < a[2] - margin and a[1] < b[3] - margin and b[1] < a[3] - margin


def _crosses(box: Box, start: tuple[float, float], end: tuple[float, float]) -> bool:
    """Whether an axis-parallel segment runs through the box (the routes here are orthogonal)."""
    (x1, y1), (x2, y2) = start, end
    segment = (min(x1, x2), min(y1, y2), max(x1, x2) + 0.01, max(y1, y2) + 0.01)
    return _overlap(box, segment, margin=0)


def _drawing(path: Path) -> tuple[dict[str, Box], dict[str, Box], dict[str, list[tuple[float, float]]]]:
    root = etree.parse(str(path)).getroot()
    labels, shapes, lines = {}, {}, {}
    for shape in root.iter(f"{{{DI}}}BPMNShape"):
        element = shape.get("bpmnElement")
        if "Lane" not in element and "Participant" not in element:
            shapes[element] = _box(shape.find(f"{{{DC}}}Bounds"))
        label = shape.find(f"{{{DI}}}BPMNLabel/{{{DC}}}Bounds")
        if label is not None:
            labels[element] = _box(label)
    for edge in root.iter(f"{{{DI}}}BPMNEdge"):
        element = edge.get("bpmnElement")
        lines[element] = [(float(w.get("x")), float(w.get("y"))) for w in edge.iter(WAYPOINT)]
        label = edge.find(f"{{{DI}}}BPMNLabel/{{{DC}}}Bounds")
        if label is not None:
            labels[element] = _box(label)
    return labels, shapes, lines


@pytest.mark.parametrize("path", sorted(BPMN.glob("*.bpmn")), ids=lambda p: p.stem)
def test_no_label_overlaps_another_label_or_a_shape_or_crosses_a_line(path):
    labels, shapes, lines = _drawing(path)
    clashes = []
    names = sorted(labels)
    for index, first in enumerate(names):
        clashes += [(first, second) for second in names[index + 1:] if _overlap(labels[first], labels[second])]
        clashes += [(first, shape) for shape, box in shapes.items()
                    if shape != first and _overlap(labels[first], box)]
        clashes += [(first, line) for line, points in lines.items() if line != first
                    and any(_crosses(labels[first], a, b) for a, b in pairwise(points))]
    assert clashes == []
