"""The registered artifact is checked against its sha256 on load; a tampered one is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopline.errors import ArtifactIntegrityError
from loopline.model.artifact import MANIFEST, WEIGHTS, load_model
from loopline.registry import ModelRegistry
from tests.conftest import TrainedSetup

pytestmark = pytest.mark.model


@pytest.fixture
def exported(trained: TrainedSetup, tmp_path: Path) -> tuple[Path, str]:
    registry = ModelRegistry(trained.settings.registry_dir)
    version = registry.get(trained.spec.name, "champion")
    destination = registry.export(trained.spec.name, "champion", tmp_path / "mnt-models")
    return destination, version.lineage.artifact_sha256


def test_the_exported_artifact_loads_with_its_recorded_sha256(exported: tuple[Path, str]) -> None:
    directory, sha256 = exported
    assert load_model(directory, sha256).network.config.numeric_width > 0


def test_a_flipped_byte_in_the_weights_is_refused(exported: tuple[Path, str]) -> None:
    directory, sha256 = exported
    weights = directory / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="does not match its sha256"):
        load_model(directory, sha256)


def test_a_rewritten_manifest_is_refused(exported: tuple[Path, str], tmp_path: Path) -> None:
    directory, sha256 = exported
    manifest = directory / MANIFEST
    manifest.write_text(manifest.read_text().replace('"format"', '"format" ', 1))
    with pytest.raises(ArtifactIntegrityError, match="the registry recorded"):
        load_model(directory, sha256)


def test_a_missing_file_is_refused(exported: tuple[Path, str]) -> None:
    directory, sha256 = exported
    (directory / WEIGHTS).unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        load_model(directory, sha256)


def test_a_directory_without_manifest_is_not_an_artifact(tmp_path: Path) -> None:
    shutil.copytree(Path(__file__).parent, tmp_path / "not-an-artifact")
    with pytest.raises(ArtifactIntegrityError, match="not a Loopline artifact"):
        load_model(tmp_path / "not-an-artifact", None)
