"""ModelRegistry against a real BentoML model store in a temporary directory."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import bentoml
import pytest
from bentoml._internal.models.model import ModelStore

from loopline.errors import ArtifactIntegrityError, RegistryError
from loopline.registry import DataWindow, Lineage, ModelRegistry, load_version_dir

NAME = "flight-delay"
ARTIFACT_FILES = {
    "network.json": b'{"kind": "tabular_mlp"}',
    "preprocessing.json": b'{"numeric": {"distance": [0.0, 1.0]}}',
    "weights.safetensors": bytes(range(256)),
    "reference_sample.parquet": b"PAR1 not really parquet PAR1",
}


def _window(start_month: int, end_month: int) -> DataWindow:
    return DataWindow(
        start=datetime(2013, start_month, 1, tzinfo=UTC),
        end=datetime(2013, end_month, 1, tzinfo=UTC),
    )


def make_artifact(directory: Path, weights: bytes = b"") -> Path:
    """A fake artifact: a few files and a manifest of their sha256."""
    directory.mkdir(parents=True)
    files = {
        **ARTIFACT_FILES,
        "weights.safetensors": ARTIFACT_FILES["weights.safetensors"] + weights,
    }
    for filename, content in files.items():
        (directory / filename).write_bytes(content)
    manifest = {
        filename: hashlib.sha256(content).hexdigest() for filename, content in files.items()
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, sort_keys=True))
    return directory


def make_lineage(artifact: Path, roc_auc: float = 0.71) -> Lineage:
    return Lineage(
        model_name=NAME,
        spec={"name": NAME, "promotion": {"metric": "roc_auc"}},
        feature_service="flight_delay_v1",
        features=["flight_stats:dep_delay_mean", "carrier_stats:delay_rate"],
        train_window=_window(1, 7),
        validation_window=_window(7, 8),
        holdout_window=_window(8, 9),
        rows={"train": 1000, "validation": 200, "holdout": 200, "excluded": 12},
        code_commit="0123abc",
        parameters={"epochs": 12, "hidden": [128, 64]},
        metrics={"model": {"roc_auc": roc_auc}, "baseline": {"roc_auc": 0.70}},
        artifact_sha256=hashlib.sha256((artifact / "manifest.json").read_bytes()).hexdigest(),
        reference_sample="reference_sample.parquet",
        trained_at=datetime(2013, 9, 2, tzinfo=UTC),
    )


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """A registry holding v1 and v2 of NAME, whose artifacts differ in their weights."""
    reg = ModelRegistry(tmp_path / "registry")
    for n in (1, 2):
        artifact = make_artifact(tmp_path / f"artifact{n}", weights=bytes([n]))
        reg.register(NAME, artifact, make_lineage(artifact, roc_auc=0.70 + n / 100))
    return reg


def test_constructing_a_registry_writes_nothing(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "registry")
    assert reg.models() == []
    assert not (tmp_path / "registry").exists()


def test_register_numbers_versions_and_copies_files_and_lineage(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    versions = registry.versions(NAME)
    assert [v.version for v in versions] == ["v1", "v2"]
    assert registry.models() == [NAME]
    for n, version in enumerate(versions, start=1):
        for filename in [*ARTIFACT_FILES, "manifest.json"]:
            expected = (tmp_path / f"artifact{n}" / filename).read_bytes()
            assert (version.path / filename).read_bytes() == expected
        assert Lineage.model_validate_json((version.path / "lineage.json").read_bytes()) == (
            version.lineage
        )
        assert version.lineage.metrics["model"] == {"roc_auc": 0.70 + n / 100}
        assert version.aliases == ()


def test_versions_are_bentoml_models_with_lineage_labels(registry: ModelRegistry) -> None:
    store = ModelStore(registry.root / "models")
    tags = sorted(str(m.tag) for m in bentoml.models.list(NAME, _model_store=store))
    assert tags == [f"{NAME}:v1", f"{NAME}:v2"]
    model = store.get(f"{NAME}:v2")
    lineage = registry.get(NAME, "v2").lineage
    assert model.info.labels == {
        "artifact_sha256": lineage.artifact_sha256,
        "feature_service": "flight_delay_v1",
        "code_commit": "0123abc",
    }
    assert model.creation_time == registry.get(NAME, "v2").created_at


@pytest.mark.parametrize(
    ("ref", "expected"), [("v1", "v1"), ("1", "v1"), ("2", "v2"), ("latest", "v2")]
)
def test_get_resolves_version_refs(registry: ModelRegistry, ref: str, expected: str) -> None:
    assert registry.get(NAME, ref).version == expected


def test_aliases_resolve_and_persist_across_instances(registry: ModelRegistry) -> None:
    assert registry.aliases(NAME) == {}
    registry.set_alias(NAME, "champion", "v1")
    challenger = registry.set_alias(NAME, "challenger", "latest")
    assert challenger.version == "v2"
    assert challenger.aliases == ("challenger",)

    reopened = ModelRegistry(registry.root)
    assert reopened.aliases(NAME) == {"champion": "v1", "challenger": "v2"}
    assert reopened.get(NAME).version == "v1"
    assert reopened.get(NAME, "challenger").aliases == ("challenger",)
    assert [v.aliases for v in reopened.versions(NAME)] == [("champion",), ("challenger",)]

    reopened.set_alias(NAME, "champion", "challenger")  # promote
    reopened.clear_alias(NAME, "challenger")
    reopened.clear_alias(NAME, "challenger")  # clearing an unset alias does nothing
    assert ModelRegistry(registry.root).aliases(NAME) == {"champion": "v2"}
    assert ModelRegistry(registry.root).get(NAME).aliases == ("champion",)


def test_unknown_model_names_it_and_the_known_models(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match=r"no model named 'churn'.*flight-delay"):
        registry.get("churn", "latest")
    with pytest.raises(RegistryError, match="churn"):
        registry.versions("churn")
    with pytest.raises(RegistryError, match="churn"):
        registry.aliases("churn")


@pytest.mark.parametrize("ref", ["v3", "3", "v10"])
def test_unknown_version_names_it_and_the_known_versions(registry: ModelRegistry, ref: str) -> None:
    with pytest.raises(RegistryError, match=rf"{NAME}.*no version v{ref.lstrip('v')}.*v1, v2"):
        registry.get(NAME, ref)


def test_unset_alias_and_malformed_ref_are_registry_errors(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match=rf"{NAME}.*no champion.*v1, v2"):
        registry.get(NAME)
    with pytest.raises(RegistryError, match=rf"'canary' names no version of '{NAME}'"):
        registry.get(NAME, "canary")
    with pytest.raises(RegistryError, match="unknown alias 'canary'"):
        registry.set_alias(NAME, "canary", "v1")
    with pytest.raises(RegistryError, match="unknown alias 'canary'"):
        registry.clear_alias(NAME, "canary")
    with pytest.raises(RegistryError, match="no version v9"):
        registry.set_alias(NAME, "champion", "v9")
    assert registry.aliases(NAME) == {}


def test_mismatched_manifest_registers_nothing(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "registry")
    artifact = make_artifact(tmp_path / "artifact")
    lineage = make_lineage(artifact)
    (artifact / "manifest.json").write_text("{}")
    with pytest.raises(ArtifactIntegrityError, match=r"manifest\.json has sha256"):
        reg.register(NAME, artifact, lineage)
    (artifact / "manifest.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"no manifest\.json"):
        reg.register(NAME, artifact, lineage)
    assert reg.models() == []
    assert not (tmp_path / "registry").exists()


def test_register_rejects_bad_names_and_reserved_files(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "registry")
    artifact = make_artifact(tmp_path / "artifact")
    lineage = make_lineage(artifact)
    with pytest.raises(ValueError, match="not a valid BentoML tag"):
        reg.register("Flight Delay", artifact, lineage)
    with pytest.raises(ValueError, match="lineage is for model 'flight-delay'"):
        reg.register("churn", artifact, lineage)
    (artifact / "model.yaml").write_text("name: impostor")
    with pytest.raises(ArtifactIntegrityError, match=r"model\.yaml"):
        reg.register(NAME, artifact, lineage)
    assert reg.models() == []


def test_incomplete_version_is_skipped_and_its_number_not_reused(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    crashed = registry.root / "models" / NAME / "v3"
    crashed.mkdir()
    (crashed / "weights.safetensors").write_bytes(b"half written")
    assert [v.version for v in registry.versions(NAME)] == ["v1", "v2"]
    assert registry.get(NAME, "latest").version == "v2"
    artifact = make_artifact(tmp_path / "artifact4")
    assert registry.register(NAME, artifact, make_lineage(artifact)).version == "v4"


def test_export_round_trips_files_and_lineage(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.set_alias(NAME, "champion", "v1")
    dest = tmp_path / "mnt" / "models"
    assert registry.export(NAME, "champion", dest) == dest

    stored = registry.get(NAME, "v1")
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*ARTIFACT_FILES, "manifest.json", "lineage.json", "registry.json"]
    )
    for filename in [*ARTIFACT_FILES, "manifest.json"]:
        assert (dest / filename).read_bytes() == (stored.path / filename).read_bytes()

    loaded = load_version_dir(dest)
    assert (loaded.name, loaded.version, loaded.path) == (NAME, "v1", dest)
    assert loaded.lineage == stored.lineage
    assert loaded.created_at == stored.created_at
    assert loaded.aliases == ()


def test_exported_dir_can_be_registered_again(registry: ModelRegistry, tmp_path: Path) -> None:
    dest = registry.export(NAME, "v1", tmp_path / "exported")
    other = ModelRegistry(tmp_path / "other")
    copied = other.register(NAME, dest, load_version_dir(dest).lineage)
    assert copied.version == "v1"
    assert copied.lineage == registry.get(NAME, "v1").lineage


def test_export_refuses_non_empty_dest_unless_overwrite(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / "stale.bin").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="not empty"):
        registry.export(NAME, "v1", dest)
    assert [p.name for p in dest.iterdir()] == ["stale.bin"]

    registry.export(NAME, "v2", dest, overwrite=True)
    assert not (dest / "stale.bin").exists()
    assert load_version_dir(dest).version == "v2"
    with pytest.raises(ValueError, match="overlaps"):
        registry.export(NAME, "v1", registry.get(NAME, "v1").path, overwrite=True)


def test_load_version_dir_detects_a_changed_manifest(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    dest = registry.export(NAME, "v1", tmp_path / "models")
    (dest / "manifest.json").write_text("{}")
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        load_version_dir(dest)
    (dest / "lineage.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"no lineage\.json"):
        load_version_dir(dest)


def test_summary_is_json_with_the_headline_metric(registry: ModelRegistry) -> None:
    registry.set_alias(NAME, "champion", "v2")
    summary = registry.get(NAME).to_summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["name"] == NAME
    assert summary["version"] == "v2"
    assert summary["aliases"] == ["champion"]
    assert summary["metric"] == "roc_auc"
    assert summary["metric_value"] == pytest.approx(0.72)
    assert summary["artifact_sha256"] == registry.get(NAME, "v2").lineage.artifact_sha256
    assert datetime.fromisoformat(str(summary["created_at"])).tzinfo is not None
