"""Retraining on real parts: the suite's trained feature repo and champion, and a labelled
dataset of the first two live weeks (September 2013) written the way the outcome join writes it:
the real requests, their features as Feast serves them point-in-time, the champion's answers,
and the real outcomes."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from loopline.data.prepare import read_table
from loopline.features.training_set import TIMESTAMP, training_set
from loopline.model.artifact import load_model
from loopline.outcomes.dataset import Joined, LabelledDataset
from loopline.predictions import PredictionRecord
from loopline.registry import ModelRegistry
from loopline.settings import Settings
from loopline.spec import ModelSpec
from tests.conftest import TrainedSetup, fast_spec_file

LIVE_DAYS = (pd.Timestamp("2013-09-01", tz="UTC"), pd.Timestamp("2013-09-15", tz="UTC"))
"""The live requests the fixture labels: two weeks after history ends."""


@dataclass(frozen=True)
class LiveLabelled:
    directory: Path
    """The labelled dataset (``LOOPLINE_OUTCOME_DATASET_DIR``), shared read only."""
    rows: pd.DataFrame
    """Request id, request time, outcome time and label of every row written."""


def write_labelled(
    settings: Settings, spec: ModelSpec, days: tuple[pd.Timestamp, pd.Timestamp], directory: Path
) -> LiveLabelled:
    """Label the requests of ``days`` as the outcome join would have after serving them with
    the registry's champion: features point-in-time from Feast (what the online store held,
    ``loopline skew`` shows), the champion's probabilities, the prepared outcomes."""
    requests = read_table(settings, "requests")
    live = requests[(requests[TIMESTAMP] >= days[0]) & (requests[TIMESTAMP] < days[1])]
    outcomes = read_table(settings, spec.label.source).set_index(spec.request_id)
    served = training_set(settings, spec, live, outcomes.reset_index(), days).frame
    champion = ModelRegistry(settings.registry_dir).get(spec.name, "champion")
    scores = load_model(champion.path, champion.lineage.artifact_sha256).predict_proba(served)
    features = [name for name in served.columns if name not in live.columns and name != "delayed"]
    request_fields = list(dict.fromkeys([*spec.entity_keys, *spec.request_fields]))
    joined = []
    for row, score in zip(served.to_dict("records"), scores, strict=True):
        outcome = outcomes.loc[row[spec.request_id]]
        record = PredictionRecord(
            request_id=f"fixture-{row[spec.request_id]}",
            timestamp=datetime.now(UTC),
            model=spec.name,
            model_version=champion.version,
            endpoint="predict_batch",
            event_timestamp=row[TIMESTAMP].to_pydatetime(),
            id_field=spec.request_id,
            id_value=row[spec.request_id],
            request={name: row[name] for name in request_fields},
            features={name: None if pd.isna(row[name]) else row[name] for name in features},
            feature_status={},
            probability=float(score),
            decision=bool(score >= spec.decision_threshold),
        )
        label = outcome[spec.label.name]
        joined.append(
            Joined(
                record,
                str(outcome["status"]),
                outcome[TIMESTAMP].to_pydatetime(),
                None if pd.isna(outcome["arr_delay"]) else float(outcome["arr_delay"]),
                None if pd.isna(label) else int(label),
            )
        )
    LabelledDataset(directory, spec.label.name).write(joined)
    rows = pd.DataFrame(
        {
            "request_id": [j.record.id_value for j in joined],
            TIMESTAMP: [j.record.event_timestamp for j in joined],
            "outcome_timestamp": [j.outcome_timestamp for j in joined],
            "label": [j.label for j in joined],
        }
    )
    return LiveLabelled(directory, rows)


@pytest.fixture(scope="session")
def live_labelled(trained: TrainedSetup, tmp_path_factory: pytest.TempPathFactory) -> LiveLabelled:
    return write_labelled(
        trained.settings, trained.spec, LIVE_DAYS, tmp_path_factory.mktemp("labelled")
    )


def retrain_spec_file(directory: Path, **overrides: dict[str, object]) -> Path:
    """The fast spec with a three-week window: train to Sep 4 (live from Sep 1), validate to
    Sep 8, hold out the last week; ``overrides`` update sections (``training``, ...)."""
    spec = yaml.safe_load(fast_spec_file(directory).read_text())
    spec["retraining"] = {"window_days": 21, "validation_days": 4, "holdout_days": 7}
    for section, values in overrides.items():
        spec[section] = {**spec.get(section, {}), **values}
    path = directory / "flight-delay-retrain.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass(frozen=True)
class RetrainSetup:
    settings: Settings
    labelled: LiveLabelled
    trained: TrainedSetup

    def env(self) -> dict[str, str]:
        """The settings as ``loopline`` reads them from its environment."""
        return {
            **os.environ,
            "LOOPLINE_HOME": str(self.settings.home),
            "LOOPLINE_FEATURE_REPO": str(self.settings.feature_repo),
            "LOOPLINE_OUTCOME_DATASET_DIR": str(self.labelled.directory),
        }


@pytest.fixture
def retrain_setup(
    trained: TrainedSetup, live_labelled: LiveLabelled, tmp_path: Path
) -> RetrainSetup:
    """A home of this test's own holding a copy of the suite's registry (champion v1), on the
    trained feature repo (read only) and the shared labelled dataset."""
    home = tmp_path / "home"
    shutil.copytree(trained.settings.registry_dir, home / "registry")
    settings = Settings(
        feature_repo=trained.settings.feature_repo,
        home=home,
        outcome_dataset_dir=live_labelled.directory,
    )
    return RetrainSetup(settings, live_labelled, trained)
