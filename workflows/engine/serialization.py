"""Save and load workflows without embedding their spec in every case.

SpiffWorkflow's serializer writes the whole parsed spec into each saved workflow; a case here
stores only its own tasks and data, and the deployed version's spec (parsed once per process)
is handed back in on load.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder

from .specs import spec_config

FORMAT = "cadreflow-1/spiff-1.5"


class _SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_spec_free_dict(self, dct: dict[str, Any], spec: Any, subprocess_specs: Any) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], _uuid, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _uuid(value: str) -> UUID:
    return UUID(value)


_REGISTRY = BpmnWorkflowSerializer.configure(spec_config())
_CONVERTER = _SpecFreeWorkflowConverter(BpmnWorkflow, _REGISTRY)
_ENCODER = create_encoder(_REGISTRY, None)  # converts objects Spiff keeps in internal data (events)


def dump(workflow: BpmnWorkflow) -> str:
    """Serialize a workflow's tasks and data (not its spec) to JSON."""
    _REGISTRY._encoder_mode = True
    try:
        dct = _REGISTRY.convert(workflow)
    finally:
        _REGISTRY._encoder_mode = False
    dct["format"] = FORMAT
    return json.dumps(dct, cls=_ENCODER, separators=(",", ":"), ensure_ascii=False)


def load(state: str, spec: Any, subprocess_specs: Any) -> BpmnWorkflow:
    """Restore a workflow saved by `dump`, attached to its version's parsed spec."""
    dct = json.loads(state)
    if dct.pop("format", None) != FORMAT:
        raise ValueError("saved case state has an unknown format")
    dct.pop("typename", None)
    return _CONVERTER.from_spec_free_dict(dct, spec, subprocess_specs)


def registry() -> Any:
    """The serializer registry (SpiffWorkflow's spec diff compares specs through it)."""
    return _REGISTRY
