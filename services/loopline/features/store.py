"""Build the Feast ``FeatureStore`` from settings, and run ``apply`` and ``materialize``.

The repo's ``feature_store.yaml`` is the single source of the config; settings only swap the
online store for Redis when ``LOOPLINE_REDIS_URL`` is set, so no file is ever edited.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from feast import FeatureStore
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.repo_config import RepoConfig, load_repo_config
from feast.repo_operations import apply_total, get_repo_files, py_path_to_module

from loopline.settings import Settings


def repo_config(settings: Settings) -> RepoConfig:
    repo = settings.feature_repo.resolve()
    config = load_repo_config(repo, repo / "feature_store.yaml")
    connection = settings.feast_redis_connection_string()
    if connection is not None:
        config.online_config = RedisOnlineStoreConfig(connection_string=connection)
    return config


def feature_store(settings: Settings) -> FeatureStore:
    return FeatureStore(
        repo_path=str(settings.feature_repo.resolve()), config=repo_config(settings)
    )


@contextlib.contextmanager
def inside_repo(settings: Settings) -> Iterator[Path]:
    """Run inside the feature repo, then return to the previous working directory.

    Feast's DuckDB offline store opens relative parquet paths against the working directory,
    not the repo path, and ``apply_total`` changes directory itself. Inside, two notices from
    Feast and ibis that users cannot act on are silenced (Feast resets filters set earlier).
    """
    repo = settings.feature_repo.resolve()
    previous = Path.cwd()
    os.chdir(repo)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="On demand feature view is an experimental")
            warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")
            yield repo
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def definitions_importable(settings: Settings) -> Iterator[Path]:
    """Inside the repo with its directory on ``sys.path``: the definitions import each other as
    top-level modules (as under the ``feast`` CLI). Modules of those names already imported (an
    earlier parse, of this repo or another) are dropped first, so Feast parses the files as they
    are now."""
    with inside_repo(settings) as repo:
        for path in get_repo_files(repo):
            sys.modules.pop(py_path_to_module(path), None)
        sys.path.insert(0, str(repo))
        try:
            yield repo
        finally:
            sys.path.remove(str(repo))


def apply(settings: Settings) -> str:
    """``feast apply`` on the repo with the configured online store; returns Feast's report."""
    config = repo_config(settings)
    output = io.StringIO()
    with definitions_importable(settings) as repo, contextlib.redirect_stdout(output):
        apply_total(config, repo, skip_source_validation=False)
    return output.getvalue()


@dataclass(frozen=True)
class MaterializeReport:
    start: datetime
    end: datetime
    feature_views: list[str]
    online_store: str


def materialize(
    settings: Settings, start: datetime, end: datetime, feature_views: list[str] | None = None
) -> MaterializeReport:
    """Load the latest value per entity in ``[start, end]`` into the online store."""
    store = feature_store(settings)
    views = feature_views or [view.name for view in store.list_feature_views()]
    with inside_repo(settings), contextlib.redirect_stdout(io.StringIO()):
        store.materialize(start_date=start, end_date=end, feature_views=views)
    return MaterializeReport(start, end, sorted(views), store.config.online_store.type)
