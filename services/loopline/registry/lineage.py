"""What a registered model version records about where it came from."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DataWindow(BaseModel):
    """Half-open ``[start, end)`` interval of request timestamps."""

    start: datetime
    end: datetime


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
