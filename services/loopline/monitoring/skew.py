"""Training-serving skew: the features a prediction was served with, against the features the
offline store gives for the same entities at the same time.

``loopline skew --sample N`` draws N logged predictions (seeded), asks Feast for their
point-in-time features (``get_historical_features``, as training does) at each record's
``event_timestamp`` with its logged request fields, and compares every feature with the value
the record says was served. A feature is compared only where what served it was fresh: its
feature view's status was ``fresh`` (for an on-demand feature, every view it reads); stale,
missing and fallback values are served as defaults by design and counted apart. Two values
match when both are null or they differ by at most the tolerance.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from feast import FeatureStore

from loopline.errors import LooplineError
from loopline.features.store import feature_store, inside_repo
from loopline.predictions import PredictionRecord, PredictionStream, read_segments
from loopline.settings import Settings
from loopline.spec import ModelSpec

TIMESTAMP = "event_timestamp"
ROW = "__skew_row"
WORST = 10


class NoPredictions(LooplineError):
    """There is no logged prediction to check."""


@dataclass
class FeatureSkew:
    compared: int = 0
    mismatched: int = 0
    not_fresh: int = 0
    """Values not compared: their view was stale, missing or fallback when served."""

    @property
    def mismatch_rate(self) -> float | None:
        return self.mismatched / self.compared if self.compared else None


@dataclass
class SkewReport:
    sampled: int
    tolerance: float
    features: dict[str, FeatureSkew]
    worst: list[dict[str, Any]] = field(default_factory=list)
    """The largest differences (a null against a value counts as infinite)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "tolerance": self.tolerance,
            "features": {
                name: {
                    "compared": f.compared,
                    "mismatched": f.mismatched,
                    "mismatch_rate": f.mismatch_rate,
                    "not_fresh": f.not_fresh,
                }
                for name, f in sorted(self.features.items())
            },
            "worst": self.worst,
        }


def logged(settings: Settings) -> Iterator[PredictionRecord]:
    """The prediction log, from whichever sink serving writes."""
    url = settings.prediction_log_url
    if url is None:
        return read_segments(settings.log_dir)
    return PredictionStream.from_url(url, settings.prediction_log_stream).read()


def sample(records: Iterable[PredictionRecord], size: int, seed: int) -> list[PredictionRecord]:
    """A uniform sample of ``size`` records (reservoir: the log is read once, never held)."""
    chance = random.Random(seed)
    kept: list[PredictionRecord] = []
    for seen, record in enumerate(records):
        if seen < size:
            kept.append(record)
        elif (slot := chance.randrange(seen + 1)) < size:
            kept[slot] = record
    return kept


def views_of_features(store: FeatureStore, service_name: str) -> dict[str, set[str]]:
    """Per feature, the feature views whose freshness it depends on."""
    service = store.get_feature_service(service_name)
    odfvs = {odfv.name: odfv for odfv in store.list_on_demand_feature_views()}
    views: dict[str, set[str]] = {}
    for projection in service.feature_view_projections:
        name = projection.name_to_use()
        odfv = odfvs.get(name)
        sources = set(odfv.source_feature_view_projections) if odfv else {name}
        for feature in projection.features:
            views[feature.name] = sources
    return views


def offline_features(
    settings: Settings, spec: ModelSpec, records: list[PredictionRecord]
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Point-in-time features of ``records`` (one row each, in order) and each feature's views."""
    entities = pd.DataFrame([r.request for r in records])
    entities[TIMESTAMP] = pd.to_datetime([r.event_timestamp for r in records], utc=True)
    entities[TIMESTAMP] = entities[TIMESTAMP].astype("datetime64[us, UTC]")
    entities[ROW] = range(len(records))
    store = feature_store(settings)
    service = store.get_feature_service(spec.feature_service)
    with inside_repo(settings):
        frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    return frame.sort_values(ROW).set_index(ROW), views_of_features(store, spec.feature_service)


def _difference(served: Any, offline: Any) -> float:
    served_null = served is None or (isinstance(served, float) and math.isnan(served))
    offline_null = offline is None or pd.isna(offline)
    if served_null or offline_null:
        return 0.0 if served_null and offline_null else math.inf
    return abs(float(served) - float(offline))


def check_skew(settings: Settings, spec: ModelSpec, size: int) -> SkewReport:
    records = sample(logged(settings), size, settings.seed)
    if not records:
        raise NoPredictions(f"no logged predictions in {settings.log_dir} to check")
    frame, views = offline_features(settings, spec, records)
    features: dict[str, FeatureSkew] = defaultdict(FeatureSkew)
    differences: list[tuple[float, dict[str, Any]]] = []
    for i, record in enumerate(records):
        for name, served in record.features.items():
            skew = features[name]
            fresh = all(record.feature_status.get(v) == "fresh" for v in views.get(name, ()))
            if not fresh:
                skew.not_fresh += 1
                continue
            offline = frame.at[i, name] if name in frame.columns else None
            difference = _difference(served, offline)
            skew.compared += 1
            if difference > settings.skew_tolerance:
                skew.mismatched += 1
                differences.append((difference, _example(record, name, served, offline)))
    differences.sort(key=lambda pair: -pair[0])
    worst = [example | {"difference": d} for d, example in differences[:WORST]]
    return SkewReport(len(records), settings.skew_tolerance, dict(features), worst)


def _example(record: PredictionRecord, name: str, served: Any, offline: Any) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        record.id_field: record.id_value,
        TIMESTAMP: record.event_timestamp.isoformat(),
        "feature": name,
        "served": served,
        "offline": None if offline is None or pd.isna(offline) else float(offline),
    }
