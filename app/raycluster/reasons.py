"""Why a pod is removed: the reasons the pod plan gives and the shell's summaries count.

Apart from the plan so that the shell can name them without importing the core (and its spec
models) at start-up."""

from __future__ import annotations

WORKERS_TO_DELETE = "listed in workersToDelete"
GROUP_REMOVED = "its worker group is no longer in the spec"
SUSPENDED = "the cluster or its group is suspended"
TEMPLATE_CHANGED = "its pod template changed (upgradeStrategy Recreate)"
