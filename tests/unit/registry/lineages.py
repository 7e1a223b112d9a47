"""A minimal lineage for registering a small test artifact (the fields a registry needs)."""

from __future__ import annotations

from datetime import UTC, datetime

from loopline.registry import DataWindow, Lineage
from loopline.spec import ModelSpec

WINDOW = DataWindow(start=datetime(2013, 1, 1, tzinfo=UTC), end=datetime(2013, 2, 1, tzinfo=UTC))


def bare_lineage(spec: ModelSpec, sha256: str) -> Lineage:
    """Lineage of an artifact whose manifest hashes to ``sha256``, with empty metrics."""
    return Lineage(
        model_name=spec.name,
        spec=spec.model_dump(mode="json"),
        feature_service=spec.feature_service,
        features=[],
        train_window=WINDOW,
        validation_window=WINDOW,
        holdout_window=WINDOW,
        rows={},
        code_commit="0123abc",
        parameters={},
        metrics={},
        artifact_sha256=sha256,
        reference_sample="reference_sample.parquet",
        trained_at=datetime(2013, 2, 2, tzinfo=UTC),
    )
