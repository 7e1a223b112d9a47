"""The live loop on real parts: a feature repo materialized into its own redis-server up to
where live traffic begins, ``loopline serve`` on it, and ``loopline ingest``'s consumers (the
real ``Ingest``, here in the test's process so that its sink is the outcome join and its
``/metrics`` is served from the same registry) reading the Redis event stream."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from loopline.data.prepare import read_manifest
from loopline.features.store import apply, materialize
from loopline.ingest.online import FeastOnlineWriter
from loopline.ingest.runner import Ingest, event_stream
from loopline.outcomes import OutcomeJoin, build_outcome_sink
from loopline.registry import ModelRegistry
from loopline.settings import Settings
from loopline.spec import ModelSpec
from tests.conftest import TrainedSetup
from tests.integration.serving.server import Server, start_server
from tests.redis_server import free_port, running_redis


@dataclass
class LiveSetup:
    settings: Settings
    """As the replay, ingest and skew check read them (the server's log, the Redis stream)."""
    spec: ModelSpec
    server: Server
    join: OutcomeJoin
    metrics_url: str


@pytest.fixture(scope="module")
def live(trained: TrainedSetup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSetup]:
    root = tmp_path_factory.mktemp("live")
    with running_redis(root) as redis_url:
        repo = root / "feature_repo"
        shutil.copytree(trained.settings.feature_repo, repo, ignore=shutil.ignore_patterns("*.db"))
        base = Settings(feature_repo=repo, home=root / "home", redis_url=redis_url)
        apply(base)
        materialize(base, read_manifest(base).start, read_manifest(base).live_from)
        model_dir = ModelRegistry(trained.settings.registry_dir).export(
            trained.spec.name, "champion", root / "mnt-models"
        )
        env = {
            "LOOPLINE_FEATURE_REPO": str(repo),
            "LOOPLINE_HOME": str(base.home),
            "LOOPLINE_REDIS_URL": redis_url,
            "LOOPLINE_MODEL_PATH": str(model_dir),
        }
        server = start_server(root / "server", env)
        settings = base.model_copy(
            update={
                "prediction_log_dir": server.log_dir,
                "replay_url": server.url,
                "outcome_flush_s": 0.5,
            }
        )
        registry = CollectorRegistry()
        join = build_outcome_sink(settings, registry, trained.spec)
        ingest = Ingest(
            settings,
            event_stream(settings),
            range(settings.ingest_shards),
            FeastOnlineWriter(settings),
            registry,
            join,
        )
        port = free_port()
        http, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
        ingest.start()
        try:
            yield LiveSetup(settings, trained.spec, server, join, f"http://127.0.0.1:{port}")
        finally:
            ingest.close()
            join.close()
            http.shutdown()
            server.stop()
