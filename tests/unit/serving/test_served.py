"""Which artifact a server may serve: its sha256, recomputed from its files, must equal the pin
(``LOOPLINE_MODEL_SHA256``) and the registry's own record; a rewrite of the files with the
manifest and lineage recomputed passes the self-consistency checks and is refused by these."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from loopline.errors import ArtifactIntegrityError, SettingsError
from loopline.model.artifact import (
    FILES,
    MANIFEST,
    WEIGHTS,
    load_model,
    save_model,
    verify_artifact,
    verify_pinned,
)
from loopline.registry import ModelRegistry
from loopline.registry.export import LINEAGE_FILE, RECORD_FILE
from loopline.serving.served import resolve_model
from loopline.settings import Settings, load_settings
from loopline.spec import load_spec
from tests.unit.model.test_artifact import FRAME, small_model
from tests.unit.registry.lineages import bare_lineage

SPEC = load_spec("flight-delay")


def rewrite(directory: Path, name: str, content: bytes) -> str:
    """Replace ``name`` and recompute everything the directory says about itself: the manifest,
    ``lineage.json`` and ``registry.json`` (where present). Returns the new artifact sha256."""
    (directory / name).write_bytes(content)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"][name] = hashlib.sha256(content).hexdigest()
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    sha256 = hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()
    for document, key in ((LINEAGE_FILE, "artifact_sha256"), (RECORD_FILE, "artifact_sha256")):
        if (directory / document).is_file():
            data = json.loads((directory / document).read_text())
            data[key] = sha256
            (directory / document).write_text(json.dumps(data, indent=2))
    return sha256


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("artifact")
    return directory, save_model(small_model(), FRAME, directory)


@pytest.fixture
def registry_home(tmp_path: Path, artifact: tuple[Path, str]) -> tuple[Path, str]:
    """A home whose registry holds the artifact as champion of the spec's model."""
    directory, sha256 = artifact
    lineage = bare_lineage(SPEC, sha256)
    home = tmp_path / "home"
    registry = ModelRegistry(home / "registry")
    registry.register(SPEC.name, directory, lineage)
    registry.set_alias(SPEC.name, "champion", "v1")
    return home, sha256


def _exported(home: Path, destination: Path) -> Path:
    return ModelRegistry(home / "registry").export(SPEC.name, "champion", destination)


def test_the_registered_artifact_is_served_pinned_or_not(
    registry_home: tuple[Path, str], tmp_path: Path
) -> None:
    home, sha256 = registry_home
    exported = _exported(home, tmp_path / "mnt-models")
    assert json.loads((exported / RECORD_FILE).read_text())["artifact_sha256"] == sha256
    for settings in (
        Settings(home=home),
        Settings(home=home, model_sha256=sha256),
        Settings(home=home, model_sha256=sha256.upper()),
        Settings(model_path=exported),
        Settings(model_path=exported, model_sha256=sha256),
    ):
        served = resolve_model(settings)
        assert (served.sha256, served.version, served.name) == (sha256, "v1", SPEC.name)


def test_a_consistent_rewrite_passes_every_self_check(artifact: tuple[Path, str]) -> None:
    """The gap the pin closes: manifest, files and lineage all agree after the rewrite."""
    directory, sha256 = artifact
    copy = Path(shutil.copytree(directory, directory.parent / "rewritten"))
    forged = rewrite(copy, WEIGHTS, (copy / WEIGHTS).read_bytes()[:-1] + b" ")
    assert verify_artifact(copy, None) == forged != sha256
    with pytest.raises(ArtifactIntegrityError, match="LOOPLINE_MODEL_SHA256 pins"):
        verify_pinned(copy, {"LOOPLINE_MODEL_SHA256": sha256})


def test_an_exported_rewrite_is_refused_by_the_pin(
    registry_home: tuple[Path, str], tmp_path: Path
) -> None:
    home, sha256 = registry_home
    exported = _exported(home, tmp_path / "mnt-models")
    rewrite(exported, WEIGHTS, b"not even safetensors")  # registry.json recomputed too
    # Without a pin nothing outside the directory knows better (docs/serving.md, Integrity).
    assert resolve_model(Settings(model_path=exported)).sha256 != sha256
    with pytest.raises(ArtifactIntegrityError, match=r"not the pinned one.*LOOPLINE_MODEL_SHA256"):
        resolve_model(Settings(model_path=exported, model_sha256=sha256))


def test_an_exported_rewrite_that_forgets_registry_json_is_refused(
    registry_home: tuple[Path, str], tmp_path: Path
) -> None:
    home, _ = registry_home
    exported = _exported(home, tmp_path / "mnt-models")
    record = (exported / RECORD_FILE).read_text()
    rewrite(exported, WEIGHTS, b"weights")
    (exported / RECORD_FILE).write_text(record)
    with pytest.raises(ArtifactIntegrityError, match=r"registry\.json \(the registry's record"):
        resolve_model(Settings(model_path=exported))


def test_a_rewrite_in_the_store_is_refused_by_the_registrys_record(
    registry_home: tuple[Path, str],
) -> None:
    """Files, manifest and lineage.json rewritten in the BentoML store: model.yaml still holds
    the sha256 recorded at registration, and no pin is needed to see the difference."""
    home, sha256 = registry_home
    version = ModelRegistry(home / "registry").get(SPEC.name, "champion")
    assert version.registered_sha256 == sha256
    rewrite(version.path, WEIGHTS, b"weights")
    assert ModelRegistry(home / "registry").get(SPEC.name, "champion").lineage  # self-consistent
    with pytest.raises(ArtifactIntegrityError, match=r"registry's record of flight-delay:v1"):
        resolve_model(Settings(home=home))


def test_a_wrong_pin_is_refused_before_the_directory_is_read(
    registry_home: tuple[Path, str], tmp_path: Path
) -> None:
    home, _ = registry_home
    exported = _exported(home, tmp_path / "mnt-models")
    (exported / LINEAGE_FILE).write_text("{not json")  # never parsed: the pin fails first
    with pytest.raises(ArtifactIntegrityError, match="LOOPLINE_MODEL_SHA256 pins " + "a" * 64):
        resolve_model(Settings(model_path=exported, model_sha256="a" * 64))


@pytest.mark.parametrize(
    "manifest",
    [
        {"format": "loopline-artifact/1", "files": {}},
        {"format": "loopline-artifact/1", "files": {name: "0" * 64 for name in FILES[:-1]}},
        {"format": "loopline-artifact/1", "files": {**dict.fromkeys(FILES, "0"), "x.pkl": "0"}},
        {"format": "loopline-artifact/1", "files": ["weights.safetensors"]},
    ],
)
def test_a_manifest_must_list_exactly_the_artifacts_files(
    artifact: tuple[Path, str], tmp_path: Path, manifest: object
) -> None:
    copy = Path(shutil.copytree(artifact[0], tmp_path / "copy"))
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match="must list the sha256 of exactly"):
        verify_artifact(copy, None)


def test_load_model_parses_the_bytes_it_verified(artifact: tuple[Path, str]) -> None:
    directory, sha256 = artifact
    assert load_model(directory, sha256).network.config.numeric_width > 0
    assert load_model(directory, sha256.upper()).network.config.numeric_width > 0


@pytest.mark.parametrize("value", ["abc", "g" * 64, "a" * 65])
def test_a_malformed_pin_is_a_settings_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_MODEL_SHA256", value)
    with pytest.raises(SettingsError, match="LOOPLINE_MODEL_SHA256"):
        load_settings()


def test_an_empty_pin_is_no_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_MODEL_SHA256", "")
    assert not load_settings().model_sha256
