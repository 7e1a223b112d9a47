"""What a registered model version records about where it came from."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DataWindow(BaseModel):
    """Half-open ``[start, end)`` interval of request timestamps."""

    start: datetime
    end: datetime


class MonitorTrigger(BaseModel):
    """The monitor summary (``latest-monitor.json``) a retrain read: what triggered it."""

    path: str
    sha256: str = Field(description="sha256 of the summary file as read.")
    decision: str | None = None
    drift_share: float | None = None
    champion_version: str | None = None
    report: str | None = Field(None, description="The monitor's report.html.")


class Retraining(BaseModel):
    """How a retrained version's sliding window was chosen and what it held."""

    window: DataWindow = Field(
        description="Requests trained and held out on, ending at the latest labelled outcome."
    )
    live_from: datetime | None = Field(
        None, description="The first live (served and labelled) request in the window."
    )
    live_rows: dict[str, int] = Field(
        default_factory=dict, description="Rows per split that came from the labelled dataset."
    )
    champion: str | None = Field(None, description="The champion it was compared with.")
    champion_metrics: dict[str, object] = Field(
        default_factory=dict, description="The champion's metrics on the same holdout rows."
    )
    trigger: MonitorTrigger | None = None


class GateRecord(BaseModel):
    """What the promotion gate decided about the version, and why."""

    alias: str | None
    metric: str
    value: float
    champion_value: float | None = None
    reasons: list[str] = Field(default_factory=list)


class Lineage(BaseModel):
    """Everything needed to reproduce, audit and monitor one model version."""

    model_name: str
    spec: dict[str, object] = Field(description="The model spec as trained (YAML, parsed).")
    feature_service: str
    features: list[str] = Field(description="Feature references, `view:feature`, as trained.")
    train_window: DataWindow
    validation_window: DataWindow
    holdout_window: DataWindow
    rows: dict[str, int] = Field(description="Rows per split, and rows excluded by outcome.")
    code_commit: str
    parameters: dict[str, object]
    metrics: dict[str, object] = Field(description="Holdout metrics of the model and baseline.")
    artifact_sha256: str = Field(description="sha256 of the artifact's manifest.json.")
    reference_sample: str = Field(description="Parquet file (in the artifact) of training rows.")
    trained_at: datetime
    gate: GateRecord | None = Field(None, description="Absent in versions registered before it.")
    retraining: Retraining | None = Field(None, description="Set by `loopline retrain` only.")
