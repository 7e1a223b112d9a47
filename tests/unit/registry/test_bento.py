"""A registered version packaged into another BentoML model store, as ``bentoml build`` does,
and served from there (``LOOPLINE_MODEL_PATH`` naming a BentoML model's directory)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bentoml._internal.models.model import ModelStore

from loopline.errors import ArtifactIntegrityError
from loopline.model.artifact import WEIGHTS, save_model
from loopline.registry import ModelRegistry
from loopline.registry.bento import load_model_dir
from loopline.serving.served import resolve_model
from loopline.settings import Settings
from loopline.spec import load_spec
from tests.unit.model.test_artifact import FRAME, small_model
from tests.unit.registry.lineages import bare_lineage
from tests.unit.serving.test_served import rewrite

SPEC = load_spec("flight-delay")


def registry_with_champion(root: Path, other: bool = False) -> tuple[ModelRegistry, str]:
    """A registry whose v1 (the champion) is a small real artifact, or ``other`` weights."""
    artifact = root / "artifact"
    sha256 = save_model(small_model(), FRAME, artifact)
    if other:
        sha256 = rewrite(artifact, WEIGHTS, b"other weights")
    lineage = bare_lineage(SPEC, sha256)
    registry = ModelRegistry(root / "registry")
    registry.register(SPEC.name, artifact, lineage)
    registry.set_alias(SPEC.name, "champion", "v1")
    return registry, sha256


def test_a_packaged_version_is_the_same_bentoml_model_and_serves(tmp_path: Path) -> None:
    registry, sha256 = registry_with_champion(tmp_path / "a")
    target = ModelStore(tmp_path / "bentoml" / "models")
    stored = registry.package(SPEC.name, "champion", target)
    assert str(stored.tag) == f"{SPEC.name}:v1"
    assert [str(m.tag) for m in target.list()] == [f"{SPEC.name}:v1"]
    assert stored.info.labels["artifact_sha256"] == sha256
    version = load_model_dir(Path(stored.path))
    assert (version.name, version.version, version.registered_sha256) == (SPEC.name, "v1", sha256)
    served = resolve_model(Settings(model_path=Path(stored.path)))
    assert (served.version, served.sha256) == ("v1", sha256)
    again = registry.package(SPEC.name, "v1", target)  # the same artifact: reused
    assert again.path == stored.path


def test_another_registrys_v1_is_refused(tmp_path: Path) -> None:
    target = ModelStore(tmp_path / "bentoml" / "models")
    first, _ = registry_with_champion(tmp_path / "a")
    second, _ = registry_with_champion(tmp_path / "b", other=True)
    first.package(SPEC.name, "champion", target)
    with pytest.raises(ArtifactIntegrityError, match=r"bentoml models delete flight-delay:v1"):
        second.package(SPEC.name, "champion", target)


def test_a_rewrite_of_the_packaged_model_is_refused_by_its_model_yaml(tmp_path: Path) -> None:
    registry, _ = registry_with_champion(tmp_path / "a")
    stored = registry.package(SPEC.name, "champion", ModelStore(tmp_path / "bentoml" / "models"))
    rewrite(Path(stored.path), WEIGHTS, b"weights")  # files, manifest and lineage.json agree
    with pytest.raises(ArtifactIntegrityError, match=r"model\.yaml \(the registry's record"):
        resolve_model(Settings(model_path=Path(stored.path)))


def test_a_tampered_registry_version_is_not_packaged(tmp_path: Path) -> None:
    registry, _ = registry_with_champion(tmp_path / "a")
    rewrite(registry.get(SPEC.name, "v1").path, WEIGHTS, b"weights")
    target = ModelStore(tmp_path / "bentoml" / "models")
    with pytest.raises(ArtifactIntegrityError, match="registry's record of flight-delay:v1"):
        registry.package(SPEC.name, "v1", target)
    assert not (tmp_path / "bentoml" / "models").exists()
