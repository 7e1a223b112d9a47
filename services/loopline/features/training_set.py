"""Point-in-time correct training sets from a feature service.

Every row is a prediction request as it was made: its entity keys and request fields at its
timestamp, joined by Feast with the latest feature values stamped at or before that timestamp
(and within each view's TTL), and labelled with the outcome that arrived later.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from feast import FeatureStore

from loopline.features.store import feature_store, inside_repo
from loopline.settings import Settings
from loopline.spec import ModelSpec

TIMESTAMP = "event_timestamp"


@dataclass(frozen=True)
class TrainingSet:
    frame: pd.DataFrame
    """Requests, their features and the label, ordered by request time."""
    feature_refs: list[str]
    """``view:feature`` for every feature of the service, as Feast names them."""
    excluded: dict[str, int]
    """Requests left out, by outcome status (e.g. cancelled flights have no arrival delay)."""


def feature_refs(store: FeatureStore, service_name: str) -> list[str]:
    service = store.get_feature_service(service_name)
    return [
        f"{projection.name_to_use()}:{feature.name}"
        for projection in service.feature_view_projections
        for feature in projection.features
    ]


Window = tuple[pd.Timestamp, pd.Timestamp]
"""``[start, end)`` of request timestamps, UTC."""


def split_window(spec: ModelSpec) -> Window:
    """The spec's history split, ``[split.start, split.end)``."""
    return pd.Timestamp(spec.split.start, tz="UTC"), pd.Timestamp(spec.split.end, tz="UTC")


def entity_frame(
    spec: ModelSpec, requests: pd.DataFrame, outcomes: pd.DataFrame, window: Window | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Requests in ``window`` (default: the spec's split) with their label; unlabelled outcomes
    counted, not dropped silently."""
    start, end = window or split_window(spec)
    in_window = requests[(requests[TIMESTAMP] >= start) & (requests[TIMESTAMP] < end)]
    columns = list(
        dict.fromkeys([spec.request_id, TIMESTAMP, *spec.entity_keys, *spec.request_fields])
    )
    labelled = in_window[columns].merge(
        outcomes[[spec.request_id, "status", spec.label.name]], on=spec.request_id, how="left"
    )
    excluded_mask = (
        labelled["status"].isin(spec.label.exclude_statuses) | labelled[spec.label.name].isna()
    )
    excluded = labelled.loc[excluded_mask, "status"].fillna("no_outcome").value_counts()
    kept = labelled[~excluded_mask].drop(columns=["status"])
    kept[spec.label.name] = kept[spec.label.name].astype("int64")
    return kept.reset_index(drop=True), {str(k): int(v) for k, v in excluded.items()}


def training_set(
    settings: Settings,
    spec: ModelSpec,
    requests: pd.DataFrame,
    outcomes: pd.DataFrame,
    window: Window | None = None,
) -> TrainingSet:
    entities, excluded = entity_frame(spec, requests, outcomes, window)
    store = feature_store(settings)
    service = store.get_feature_service(spec.feature_service)
    with inside_repo(settings):
        frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    frame = frame.sort_values([TIMESTAMP, spec.request_id], ignore_index=True)
    return TrainingSet(frame, feature_refs(store, spec.feature_service), excluded)
