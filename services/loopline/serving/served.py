"""Which model version a server serves; importable without PyTorch (the arbiter needs it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loopline.registry import ModelRegistry, load_version_dir
from loopline.settings import Settings
from loopline.spec import ModelSpec


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    sha256: str
    spec: ModelSpec
    """The spec the version was trained with, from its lineage."""
    path: Path


def resolve_model(settings: Settings) -> ServedModel:
    """The version to serve: ``model_path`` (an exported directory, e.g. KServe's
    ``/mnt/models``) when set, else ``model_ref`` of ``model_name`` in the registry."""
    if settings.model_path is not None:
        version = load_version_dir(settings.model_path)
    else:
        version = ModelRegistry(settings.registry_dir).get(settings.model_name, settings.model_ref)
    return ServedModel(
        name=version.name,
        version=version.version,
        sha256=version.lineage.artifact_sha256,
        spec=ModelSpec.model_validate(version.lineage.spec),
        path=version.path,
    )
