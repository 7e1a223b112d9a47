"""A feature repo materialized into a real redis-server, the champion exported as KServe would
mount it, and ``loopline serve`` processes started on them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loopline.data.prepare import read_manifest
from loopline.features.store import apply, materialize
from loopline.registry import ModelRegistry
from loopline.settings import Settings
from loopline.spec import load_spec
from tests.conftest import TrainedSetup
from tests.integration.serving.server import Server, start_server
from tests.redis_server import running_redis

REQUEST = load_spec("flight-delay").example_request
FRESH = "2013-08-31T23:50:00Z"
"""History is materialized up to 2013-09-01T00:00Z: every view is within its TTL here."""
LATER = "2013-09-01T06:00:00Z"
"""Six hours on: weather (TTL 2 h) and departure stats (30 min) are stale, planes never expire."""


@dataclass(frozen=True)
class ServingSetup:
    settings: Settings
    """The Redis-backed feature repo and a home of its own (plan cache)."""
    model_dir: Path
    """The champion exported as a plain directory, as KServe mounts it at /mnt/models."""
    registry_home: Path
    """The trained fixture's home, holding the registry with the champion alias."""

    def env(self, **overrides: str) -> dict[str, str]:
        settings = {
            "LOOPLINE_FEATURE_REPO": str(self.settings.feature_repo),
            "LOOPLINE_HOME": str(self.settings.home),
            "LOOPLINE_REDIS_URL": str(self.settings.redis_url),
            "LOOPLINE_MODEL_PATH": str(self.model_dir),
        }
        return {**settings, **overrides}


@pytest.fixture(scope="session")
def serving_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_redis(tmp_path_factory.mktemp("serving-redis")) as url:
        yield url


@pytest.fixture(scope="session")
def serving(
    trained: TrainedSetup, serving_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> ServingSetup:
    root = tmp_path_factory.mktemp("serving")
    repo = root / "feature_repo"
    shutil.copytree(trained.settings.feature_repo, repo, ignore=shutil.ignore_patterns("*.db"))
    settings = Settings(feature_repo=repo, home=root / "home", redis_url=serving_redis)
    apply(settings)
    manifest = read_manifest(settings)
    materialize(settings, manifest.start, manifest.live_from)
    registry = ModelRegistry(trained.settings.registry_dir)
    model_dir = registry.export(trained.spec.name, "champion", root / "mnt-models")
    return ServingSetup(settings, model_dir, trained.settings.home)


@pytest.fixture(scope="module")
def server(serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The embedded defaults with Redis features: file log, no auth, default limits."""
    running = start_server(tmp_path_factory.mktemp("server"), serving.env())
    yield running
    running.stop()
