"""The closed loop's settings (monitor, rollout, Kubernetes), a group of ``Settings``
(``loopline.settings``), which inherits them and reads them from ``LOOPLINE_*`` like the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field


class LoopSettings(BaseModel):
    """Fields of ``Settings``; never built on their own."""

    # The drift monitor (`loopline monitor`, docs/monitoring.md) and the Pushgateway its
    # gauges (and the rollout's) reach Prometheus through from a CronJob.

    monitor_window_days: float = Field(default=7.0, gt=0)
    """Days of logged predictions (the server's clock, up to now) one run compares with the
    champion's training reference; ``--window-days`` overrides it."""

    monitor_report_rows: int = Field(default=50_000, ge=1000)
    """Rows of the window Evidently's HTML report is built on: a window above this is shown
    as a seeded sample (the decision always reads every row). 50,000 keeps the report's scores
    within 0.01 of the decision's (10,000: 0.023, against a 0.1 threshold) for about the same
    time: the report's cost is Evidently's, hardly the rows' (docs/monitoring.md, "Reports")."""

    monitor_reports_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("loopline_reports_dir", "monitor_reports_dir")
    )
    """Where reports are written (env ``LOOPLINE_REPORTS_DIR``); default ``<home>/reports``."""

    pushgateway_url: str | None = None
    """``http://host:port`` of the Prometheus Pushgateway batch jobs push their gauges to;
    unset: no push."""

    # Rollout (`loopline rollout`, docs/rollout.md): a challenger in shadow or canary beside
    # the champion in every worker, promoted or rolled back on live metrics.

    rollout_poll_s: float = Field(default=1.0, ge=0)
    """How often each worker reads the rollout plan (0: never; only a registry-backed, unpinned
    server serving ``champion`` follows it)."""

    rollout_mode: Literal["shadow", "canary"] = "shadow"
    """The mode ``loopline rollout --evaluate`` starts a new challenger in."""

    rollout_share: float = Field(default=0.1, gt=0, le=1)
    """Share of request ids a canary answers when ``--share`` is not given."""

    rollout_min_labelled: int = Field(default=500, ge=10)
    """Labelled predictions each version needs, with ``rollout_min_per_class`` of each
    label, before the rollout decides."""

    rollout_min_per_class: int = Field(default=20, ge=1)

    rollout_max_labelled: int = Field(default=20000, ge=10)
    """Labelled predictions per version after which an undecided comparison rolls back."""

    rollout_auc_margin: float = Field(default=0.01, ge=0)
    """Non-inferiority margin on ROC AUC: promote when the 95% interval of the challenger's
    AUC minus the champion's lies above ``-margin``."""

    rollout_bootstrap: int = Field(default=2000, ge=100)
    """Bootstrap resamples of the AUC difference."""

    rollout_max_fallback_increase: float = Field(default=0.01, ge=0)
    """Largest increase of the share of answers with a ``fallback`` feature status allowed."""

    rollout_max_p99_ratio: float = Field(default=1.5, ge=1)
    """Largest ratio of the challenger's p99 latency (from the log) to the champion's..."""

    rollout_p99_slack_ms: float = Field(default=5.0, ge=0)
    """...plus this many milliseconds."""

    # Kubernetes (`loopline.cluster`): the monitor creates retrain Jobs, the rollout patches the
    # InferenceService. In-cluster credentials only (the projected service-account token), never
    # a kubeconfig. The chart sets these for the monitor and rollout CronJobs.

    kubernetes_namespace: str | None = None
    """Namespace of the retrain CronJob and the InferenceService; None reads the pod's own from
    ``kubernetes_service_account_dir``/namespace."""

    kubernetes_retrain_cronjob: str | None = None
    """The model's suspended retrain CronJob, whose ``jobTemplate`` the monitor runs."""

    kubernetes_inference_service: str | None = None
    """The model's InferenceService, which the rollout patches."""

    kubernetes_model_storage_uri: str | None = None
    """The storageUri the chart gives the model (``pvc://...`` or ``s3://...``); a version
    exported for a canary goes next to it, at ``<uri>-<version>``."""

    kubernetes_model_export_dir: Path | None = None
    """Where ``kubernetes_model_storage_uri`` is in the job's mount of the PVC (None on S3)."""

    kubernetes_service_account_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")
    """The projected token, CA bundle and namespace file of the pod's service account."""

    kubernetes_timeout_s: float = Field(default=10.0, gt=0)
    """Connect and read timeout of each call to the API server."""
