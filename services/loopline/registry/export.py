"""The plain-directory form of a model version, readable without the BentoML store.

An exported version directory holds the artifact's files, ``lineage.json`` and ``registry.json``
(name, version, creation time, and the artifact sha256 the registry recorded at registration).
``ModelRegistry.export`` writes one for a serving container (KServe mounts it at ``/mnt/models``)
and ``load_version_dir`` reads it back. The version's name is in the directory because every
response must name the model version that produced it.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from loopline.errors import ArtifactIntegrityError
from loopline.files import write_text_atomic
from loopline.model.artifact import MANIFEST as MANIFEST_FILE
from loopline.model.artifact import sha256_file
from loopline.registry.lineage import Lineage

LINEAGE_FILE = "lineage.json"
RECORD_FILE = "registry.json"


JsonModel = TypeVar("JsonModel", bound=BaseModel)


class _Record(BaseModel):
    """Contents of ``registry.json``: what the store knew about the version when exported."""

    name: str
    version: str
    created_at: datetime
    artifact_sha256: str | None = None
    """What the registry recorded at registration (None in exports made before it was kept)."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version; ``path`` is the directory holding its artifact files."""

    name: str
    version: str
    path: Path
    lineage: Lineage
    created_at: datetime
    aliases: tuple[str, ...] = ()
    registered_sha256: str | None = None
    """The artifact sha256 the registry recorded at registration, kept apart from
    ``lineage.json``: the BentoML store's ``model.yaml`` label (an export copies it into
    ``registry.json``). ``serving.served`` checks the artifact against it."""

    def to_summary(self) -> dict[str, object]:
        """A JSON-able row for ``loopline models list --json``.

        The headline metric is the spec's promotion metric (``roc_auc`` when the spec names none)
        as measured on the holdout, ``lineage.metrics["model"][metric]``; ``None`` when absent.
        """
        metric = _promotion_metric(self.lineage.spec)
        model_metrics = self.lineage.metrics.get("model")
        value = model_metrics.get(metric) if isinstance(model_metrics, dict) else None
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "created_at": self.created_at.isoformat(),
            "artifact_sha256": self.lineage.artifact_sha256,
            "metric": metric,
            "metric_value": value if isinstance(value, int | float) else None,
        }


def _promotion_metric(spec: dict[str, object]) -> str:
    promotion = spec.get("promotion")
    metric = promotion.get("metric") if isinstance(promotion, dict) else None
    return metric if isinstance(metric, str) else "roc_auc"


def check_manifest(artifact_dir: Path, expected_sha256: str) -> None:
    """Raise ``ArtifactIntegrityError`` unless ``manifest.json`` hashes to ``expected_sha256``."""
    manifest = artifact_dir / MANIFEST_FILE
    if not manifest.is_file():
        raise ArtifactIntegrityError(f"{artifact_dir} has no {MANIFEST_FILE}; is it an artifact?")
    actual = sha256_file(manifest)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"{manifest} has sha256 {actual} but the lineage records {expected_sha256}; "
            "the artifact was changed after training or the lineage belongs to another artifact"
        )


def read_lineage(version_dir: Path) -> Lineage:
    """Parse ``lineage.json`` and check that the manifest it records is the one on disk."""
    lineage = _read_json(version_dir / LINEAGE_FILE, Lineage)
    check_manifest(version_dir, lineage.artifact_sha256)
    return lineage


def _read_json(path: Path, model: type[JsonModel]) -> JsonModel:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactIntegrityError(f"{path.parent} has no {path.name}") from None
    except ValidationError as e:
        raise ArtifactIntegrityError(f"{path} is invalid: {e}") from e


def copy_artifact(src: Path, dest: Path, *, skip: Collection[str]) -> None:
    """Copy the tree under ``src`` into ``dest``, leaving out the top-level names in ``skip``."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n in skip] if Path(directory) == src else []

    shutil.copytree(src, dest, ignore=ignore, dirs_exist_ok=True)


def write_version_dir(
    version: ModelVersion, dest: Path, *, overwrite: bool, skip: Collection[str] = ()
) -> Path:
    """Write ``version`` to ``dest`` as an exported version directory; return ``dest``.

    ``dest`` itself is kept and only its contents replaced, because it may be a mount point.
    ``lineage.json`` is written last: a directory without it is incomplete.
    """
    src, target = version.path.resolve(), dest.resolve()
    if target.is_relative_to(src) or src.is_relative_to(target):
        raise ValueError(f"cannot export {version.name}:{version.version} into {dest}: it overlaps")
    if dest.is_dir() and any(dest.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{dest} is not empty; pass overwrite=True to replace it")
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    copy_artifact(src, dest, skip={*skip, LINEAGE_FILE, RECORD_FILE})
    record = _Record(
        name=version.name,
        version=version.version,
        created_at=version.created_at,
        artifact_sha256=version.registered_sha256 or version.lineage.artifact_sha256,
    )
    write_text_atomic(dest / RECORD_FILE, record.model_dump_json(indent=2))
    write_text_atomic(dest / LINEAGE_FILE, version.lineage.model_dump_json(indent=2))
    return dest


def load_version_dir(path: Path) -> ModelVersion:
    """Read an exported version directory (e.g. ``/mnt/models``) without the BentoML store.

    Aliases are registry state, not part of the export, so the result has none.
    """
    lineage = read_lineage(path)
    record = _read_json(path / RECORD_FILE, _Record)
    return ModelVersion(
        name=record.name,
        version=record.version,
        path=path,
        lineage=lineage,
        created_at=record.created_at,
        registered_sha256=record.artifact_sha256,
    )
