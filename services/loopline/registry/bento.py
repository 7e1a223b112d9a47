"""The registered version a Bento packages, as a BentoML model.

``bentoml build`` asks each model a service declares for its ``to_info()``. ``RegistryModel``
answers with the version the settings name (``LOOPLINE_MODEL_NAME``, ``LOOPLINE_MODEL_REF``,
default the champion, in the registry under ``LOOPLINE_HOME``), after copying it into BentoML's
own model store (``BENTOML_HOME``) under the same tag: the Bento then records that BentoML
model, ``bentoml models list`` shows it, and ``bentoml containerize`` or ``bentoml export``
carry it. A served Bento loads it from there (``load_model_dir``), not from the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _bentoml_sdk.models import BentoModel, Model
from bentoml._internal.bento.bento import BentoModelInfo
from bentoml._internal.cloud.schemas.schemasv1 import CreateModelSchema
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.models.model import MODEL_YAML_FILENAME
from bentoml._internal.models.model import Model as StoredModel
from bentoml._internal.tag import Tag

from loopline.errors import ArtifactIntegrityError, SettingsError
from loopline.registry.export import RECORD_FILE, ModelVersion, load_version_dir
from loopline.registry.store import ModelRegistry, stored_version
from loopline.settings import Settings, load_settings


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` is a BentoML model's directory (it has a ``model.yaml``), rather than
    an exported version directory (``registry.json``)."""
    return (path / MODEL_YAML_FILENAME).is_file()


def load_model_dir(path: Path) -> ModelVersion:
    """A version from a BentoML model's directory: the one a Bento packages (in
    ``BENTOML_HOME/models`` or, in its image, the Bento's own store), or one in a registry."""
    try:
        model = StoredModel.from_path(path)
    except Exception as error:  # BentoML raises its own exceptions and attrs' for a bad file
        raise ArtifactIntegrityError(f"{path / MODEL_YAML_FILENAME} is invalid: {error}") from None
    return stored_version(model)


def load_served_dir(path: Path) -> tuple[ModelVersion, Path]:
    """The version in ``path`` (``LOOPLINE_MODEL_PATH``), either kind, and the file that holds
    the store's record of it (``model.yaml`` or ``registry.json``)."""
    if is_model_dir(path):
        return load_model_dir(path), path / MODEL_YAML_FILENAME
    return load_version_dir(path), path / RECORD_FILE


class RegistryModel(Model[ModelVersion]):
    """A model reference, declared on the service, resolved from settings when used."""

    def to_info(self, alias: str | None = None) -> BentoModelInfo:
        """At ``bentoml build``: package the version into BentoML's model store."""
        settings = load_settings()
        if settings.model_path is not None:
            raise SettingsError(
                "bentoml build packages a registered version (LOOPLINE_MODEL_NAME, "
                "LOOPLINE_MODEL_REF in LOOPLINE_HOME), not a directory: unset LOOPLINE_MODEL_PATH"
            )
        registry = ModelRegistry(settings.registry_dir)
        target = BentoMLContainer.model_store.get()
        stored = registry.package(settings.model_name, settings.model_ref, target)
        return BentoModelInfo.from_bento_model(stored, alias)

    @classmethod
    def from_info(cls, info: BentoModelInfo) -> BentoModel:
        return BentoModel.from_info(info)

    def to_create_schema(self) -> CreateModelSchema:
        version = settings_version(load_settings())
        schema: CreateModelSchema = BentoModel(
            Tag(version.name, version.version)
        ).to_create_schema()
        return schema

    def resolve(self, base_path: Any = None) -> ModelVersion:
        """The version a server started from source would serve (BentoML resolves every
        declared model before its workers start). A Bento's server resolves the BentoML model
        the Bento recorded instead."""
        if base_path is not None:
            raise ValueError("a RegistryModel is packaged by bentoml build, not copied")
        return settings_version(load_settings())


def settings_version(settings: Settings) -> ModelVersion:
    """The version the settings name: ``LOOPLINE_MODEL_PATH``, else the registry's
    ``LOOPLINE_MODEL_REF`` of ``LOOPLINE_MODEL_NAME``. Its lineage is checked, not its files
    (``serving.served.resolve_model`` does that before serving it)."""
    if settings.model_path is not None:
        return load_served_dir(settings.model_path)[0]
    return ModelRegistry(settings.registry_dir).get(settings.model_name, settings.model_ref)
