"""The engine adapter: the only package in CadreFlow that imports SpiffWorkflow.

It hands out plain values (`ProcessDefinition` is opaque; `Step`, `OpenTask`, `Diagram`,
`Problem` are frozen dataclasses) so the rest of the code never sees a Spiff object.
"""

from .compiler import (
    ProcessDefinition,
    compile_process,
    content_hash,
    decision_ids,
    parse_xml,
    process_ids,
    referenced_decisions,
)
from .errors import (
    DeploymentError,
    EngineError,
    Incident,
    LoopLimitExceeded,
    NotWaiting,
    Problem,
    ScriptRefused,
    ScriptTimeout,
    TaskNotReady,
)
from .runtime import CaseRunner
from .types import Diagram, EngineEvent, OpenTask, Step

__all__ = [
    "CaseRunner",
    "DeploymentError",
    "Diagram",
    "EngineError",
    "EngineEvent",
    "Incident",
    "LoopLimitExceeded",
    "NotWaiting",
    "OpenTask",
    "Problem",
    "ProcessDefinition",
    "ScriptRefused",
    "ScriptTimeout",
    "Step",
    "TaskNotReady",
    "compile_process",
    "content_hash",
    "decision_ids",
    "parse_xml",
    "process_ids",
    "referenced_decisions",
]
