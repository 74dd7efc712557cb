"""The inventory: which Flink clusters to look after and how to reach them.

One YAML file, several clusters. model.py says what the file may hold (and gives its JSON Schema),
load.py reads it into the frozen specs of specs.py, errors.py words every problem as
`<file>: <key path>: <what is wrong>`; nothing is used from a file with a problem.
"""

from flink_runbook.inventory.errors import InventoryError
from flink_runbook.inventory.load import LOCAL_DOCKER_SOCKET, inventory_problem, inventory_schema, load_inventory
from flink_runbook.inventory.model import (
    DOCKER_SCHEMES,
    ENGINE_ID_PATTERN,
    MAX_COUNT,
    MAX_SECONDS,
    NAME_PATTERN,
)
from flink_runbook.inventory.specs import (
    APPROVAL_POLICIES,
    HOST_STATE_DIR,
    NOTICE_EVENTS,
    STATE_DIR_ENV,
    ApprovalPolicy,
    AuditSources,
    CheckpointDir,
    ClusterSpec,
    ContainerSelector,
    DockerEngine,
    Inventory,
    JobSpec,
    MonitorSettings,
    Notifications,
    RecoverySettings,
    RestAuth,
    RestSettings,
    Thresholds,
    default_state_dir,
    describe_state_dir,
)

__all__ = [
    "APPROVAL_POLICIES",
    "ApprovalPolicy",
    "DOCKER_SCHEMES",
    "ENGINE_ID_PATTERN",
    "HOST_STATE_DIR",
    "LOCAL_DOCKER_SOCKET",
    "MAX_COUNT",
    "MAX_SECONDS",
    "NAME_PATTERN",
    "NOTICE_EVENTS",
    "STATE_DIR_ENV",
    "AuditSources",
    "CheckpointDir",
    "ClusterSpec",
    "ContainerSelector",
    "DockerEngine",
    "Inventory",
    "InventoryError",
    "JobSpec",
    "MonitorSettings",
    "Notifications",
    "RecoverySettings",
    "RestAuth",
    "RestSettings",
    "Thresholds",
    "default_state_dir",
    "describe_state_dir",
    "inventory_problem",
    "inventory_schema",
    "load_inventory",
]
