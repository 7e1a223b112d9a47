"""The only code that talks to the Kubernetes API (the official ``kubernetes`` client).

``trigger_retrain`` creates a Job from the model's suspended retrain CronJob (the monitor's
"retrain" decision); ``apply_rollout`` patches the model's InferenceService for a canary, a
promotion or a rollback (the rollout's decisions). In-cluster credentials only; what the chart
grants each of them is exactly what they call (docs/kubernetes.md, "RBAC").
"""

from loopline.cluster.api import ClusterError
from loopline.cluster.retrain import trigger_retrain
from loopline.cluster.rollout import ExportLocation, RolloutApplied, apply_rollout, export_location

__all__ = [
    "ClusterError",
    "ExportLocation",
    "RolloutApplied",
    "apply_rollout",
    "export_location",
    "trigger_retrain",
]
