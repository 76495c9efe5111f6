"""The engine adapter: the only package in CadreFlow that imports SpiffWorkflow.

It hands out plain values (`ProcessDefinition` is opaque; `Step`, `OpenTask`, `Diagram`,
`Problem`, `VersionDiff`, `Migration` are frozen dataclasses) so the rest of the code never sees a
Spiff object.
"""

from .bounds import MAX_ELEMENT_NAME, DeployLimits
from .changes import DocumentDiff, ElementChange, FormChange, describe_changes
from .compiler import (
    ProcessDefinition,
    called_processes,
    compile_process,
    content_hash,
    decision_ids,
    lane_roles,
    parse_xml,
    process_ids,
    referenced_decisions,
)
from .documents import element_names, event_choices, layout_digest, meaning_digest, read_form_schema, step_nodes
from .drafts import check_process_id, new_diagram, renamed_diagram
from .errors import (
    DataRefused,
    DeploymentError,
    EngineError,
    FormCheckTimeout,
    Incident,
    LoopLimitExceeded,
    MigrationRefused,
    NotReturnable,
    NotWaiting,
    Problem,
    ScriptRefused,
    ScriptTimeout,
    TaskNotReady,
)
from .runtime import CaseRunner
from .schemas import form_errors, form_validator
from .specs import CALL_OPERATION
from .timing import add_duration, fixed_length
from .types import (
    Diagram,
    EngineEvent,
    IncidentInfo,
    Migration,
    OpenTask,
    Step,
    Thrown,
    TimerSchedule,
    VersionDiff,
    Wait,
)
from .versions import diff_versions

__all__ = [
    "CALL_OPERATION",
    "MAX_ELEMENT_NAME",
    "CaseRunner",
    "DataRefused",
    "DeployLimits",
    "DeploymentError",
    "Diagram",
    "DocumentDiff",
    "ElementChange",
    "EngineError",
    "EngineEvent",
    "FormChange",
    "FormCheckTimeout",
    "Incident",
    "IncidentInfo",
    "LoopLimitExceeded",
    "Migration",
    "MigrationRefused",
    "NotReturnable",
    "NotWaiting",
    "OpenTask",
    "Problem",
    "ProcessDefinition",
    "ScriptRefused",
    "ScriptTimeout",
    "Step",
    "TaskNotReady",
    "Thrown",
    "TimerSchedule",
    "VersionDiff",
    "Wait",
    "add_duration",
    "called_processes",
    "check_process_id",
    "compile_process",
    "content_hash",
    "decision_ids",
    "describe_changes",
    "diff_versions",
    "element_names",
    "event_choices",
    "fixed_length",
    "form_errors",
    "form_validator",
    "lane_roles",
    "layout_digest",
    "meaning_digest",
    "new_diagram",
    "parse_xml",
    "process_ids",
    "read_form_schema",
    "referenced_decisions",
    "renamed_diagram",
    "step_nodes",
]
