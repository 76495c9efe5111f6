"""The engine adapter: the only package in CadreFlow that imports SpiffWorkflow.

It hands out plain values (`ProcessDefinition` is opaque; `Step`, `OpenTask`, `Diagram`,
`Problem`, `VersionDiff`, `Migration` are frozen dataclasses) so the rest of the code never sees a
Spiff object.
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
    DataRefused,
    DeploymentError,
    EngineError,
    Incident,
    LoopLimitExceeded,
    MigrationRefused,
    NotWaiting,
    Problem,
    ScriptRefused,
    ScriptTimeout,
    TaskNotReady,
)
from .runtime import CaseRunner
from .types import Diagram, EngineEvent, IncidentInfo, Migration, OpenTask, Step, VersionDiff
from .versions import diff_versions

__all__ = [
    "CaseRunner", "DataRefused", "DeploymentError", "Diagram", "EngineError", "EngineEvent", "Incident", "IncidentInfo",
    "LoopLimitExceeded", "Migration", "MigrationRefused", "NotWaiting", "OpenTask", "Problem",
    "ProcessDefinition", "ScriptRefused", "ScriptTimeout", "Step", "TaskNotReady", "VersionDiff",
    "compile_process", "content_hash", "decision_ids", "diff_versions", "parse_xml", "process_ids",
    "referenced_decisions",
]
