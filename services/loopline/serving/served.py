"""Which model version a server serves; importable without PyTorch (the arbiter needs it).

``resolve_model`` also decides whether the artifact may be served at all: its sha256 is
recomputed from its files and checked against every value recorded for it outside the directory's
own manifest, before anything in it is parsed (docs/serving.md, "Integrity"):

- ``LOOPLINE_MODEL_SHA256``, the pin a deployment names (the chart's ``models[].artifactSha256``);
- the registry's own record of the version: the BentoML store's ``model.yaml`` label (in the
  registry, or in the model store a Bento packaged the version into), or, for an exported
  directory, the copy of it in ``registry.json``;
- ``lineage.json`` (checked by the registry's readers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loopline.model.artifact import verify_pinned
from loopline.registry import ModelRegistry
from loopline.registry.bento import load_served_dir
from loopline.settings import Settings
from loopline.spec import ModelSpec

PIN_SETTING = "LOOPLINE_MODEL_SHA256"


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    sha256: str
    """The artifact's sha256, recomputed from its files and equal to every recorded value."""
    spec: ModelSpec
    """The spec the version was trained with, from its lineage."""
    path: Path


def resolve_model(settings: Settings) -> ServedModel:
    """The version to serve: ``model_path`` (an exported directory, e.g. KServe's
    ``/mnt/models``, or a BentoML model's directory, e.g. the one a Bento packages) when set,
    else ``model_ref`` of ``model_name`` in the registry.
    ``ArtifactIntegrityError`` when its content is not what the pin and the registry recorded."""
    pins = {PIN_SETTING: settings.model_sha256} if settings.model_sha256 else {}
    if settings.model_path is not None:
        if pins:  # the pin first: nothing else in the directory is read if it is not the one
            verify_pinned(settings.model_path, pins)
        version, record = load_served_dir(settings.model_path)
        where = f"{record} (the registry's record, exported or packaged in a Bento)"
    else:
        registry = ModelRegistry(settings.registry_dir)
        version = registry.get(settings.model_name, settings.model_ref)
        where = f"the registry's record of {version.name}:{version.version} (model.yaml)"
    if version.registered_sha256 is not None:
        pins[where] = version.registered_sha256
    sha256 = verify_pinned(version.path, pins)
    return ServedModel(
        name=version.name,
        version=version.version,
        sha256=sha256,
        spec=ModelSpec.model_validate(version.lineage.spec),
        path=version.path,
    )


def preflight(settings: Settings) -> None:
    """What would make every worker fail, checked once before they start (``loopline serve``,
    and a served Bento's deployment hook) with one clear error: BentoML restarts a worker that
    fails to start for ever. The model version must resolve (its artifact checked) and the
    online store be configured. Nothing here imports Feast (seconds of start-up): the workers
    compile the feature plan."""
    from loopline.features.store_config import configured_online_store, redis_url_for

    resolve_model(settings)
    redis_url_for(configured_online_store(settings), settings)
