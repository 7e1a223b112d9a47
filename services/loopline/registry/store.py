"""Model registry: numbered versions with lineage and aliases, kept in a BentoML model store.

Layout under ``root`` (a valid ``BENTOML_HOME``: ``bentoml models list`` shows the versions)::

    models/<name>/v<N>/     one BentoML model: the artifact's files, lineage.json, model.yaml
    aliases/<name>.json     {"champion": "v3", "challenger": "v4"}

A version's files are written through ``ModelStore.register`` with ``lineage.json`` last, so a
version directory without it is a registration in progress (or one that crashed): readers skip
it, and its number is not reused. The artifact's sha256 is recorded twice: in ``lineage.json`` and
as a label in ``model.yaml``, the store's own record, which ``ModelVersion.registered_sha256``
returns so that a server can check the artifact against it (``serving.served``).

Models are not saved with ``bentoml.models.create``, which posts a usage event to BentoML's
telemetry endpoint on each save unless ``BENTOML_DO_NOT_TRACK`` is set, and copies the files twice
(through a temporary directory) in no particular order.
"""

from __future__ import annotations

import re
from pathlib import Path

from bentoml._internal.models.model import (
    CUSTOM_OBJECTS_FILENAME,
    MODEL_YAML_FILENAME,
    ModelContext,
    ModelInfo,
    ModelOptions,
    ModelStore,
)
from bentoml._internal.models.model import Model as StoredModel
from bentoml._internal.tag import Tag, validate_tag_str
from bentoml.exceptions import NotFound
from pydantic import TypeAdapter, ValidationError

from loopline.errors import ArtifactIntegrityError, RegistryError
from loopline.files import write_text_atomic
from loopline.model.artifact import verify_pinned
from loopline.registry.export import (
    LINEAGE_FILE,
    RECORD_FILE,
    ModelVersion,
    check_manifest,
    copy_artifact,
    read_lineage,
    write_version_dir,
)
from loopline.registry.lineage import Lineage

ALIASES = ("champion", "challenger")
"""The aliases a version can carry: the model serving traffic, and the one being tried."""

_STORE_FILES = frozenset({MODEL_YAML_FILENAME, CUSTOM_OBJECTS_FILENAME})
_VERSION_DIR = re.compile(r"v([1-9][0-9]*)")
_VERSION_REF = re.compile(r"v?([1-9][0-9]*)")
_ALIAS_FILE = TypeAdapter(dict[str, str])


class ModelRegistry:
    """Registers artifacts as ``name:vN`` and resolves ``vN``, ``N``, ``latest`` and aliases.

    Constructing one touches no files; directories are created by the first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._models_dir = root / "models"
        self._aliases_dir = root / "aliases"
        self._store = ModelStore(self._models_dir)

    def register(self, name: str, artifact_dir: Path, lineage: Lineage) -> ModelVersion:
        """Copy ``artifact_dir`` into the store as the next version of ``name``.

        The manifest must hash to ``lineage.artifact_sha256``; otherwise nothing is written.
        """
        validate_tag_str(name)  # ValueError for a name BentoML cannot store, e.g. upper case
        if lineage.model_name != name:
            raise ValueError(f"lineage is for model {lineage.model_name!r}, not {name!r}")
        check_manifest(artifact_dir, lineage.artifact_sha256)
        reserved = sorted(_STORE_FILES.intersection(p.name for p in artifact_dir.iterdir()))
        if reserved:
            raise ArtifactIntegrityError(
                f"{artifact_dir} contains {', '.join(reserved)}, reserved by the BentoML store"
            )
        number = max(self._numbers(name, complete=False), default=0) + 1
        tag = Tag(name, f"v{number}")
        info = ModelInfo(
            tag=tag,
            module="",
            labels={
                "artifact_sha256": lineage.artifact_sha256,
                "feature_service": lineage.feature_service,
                "code_commit": lineage.code_commit,
            },
            options=ModelOptions(),
            metadata={"trained_at": lineage.trained_at.isoformat()},
            context=ModelContext(framework_name="loopline", framework_versions={}),
            signatures={},
            api_version="v1",
        )
        with self._store.register(tag) as raw_path:
            path = Path(raw_path)
            # A lineage.json or registry.json in the artifact (an exported version being
            # registered again) is replaced by the lineage given here.
            copy_artifact(artifact_dir, path, skip={LINEAGE_FILE, RECORD_FILE})
            with (path / MODEL_YAML_FILENAME).open("w", encoding="utf-8") as f:
                info.dump(f)
            write_text_atomic(path / LINEAGE_FILE, lineage.model_dump_json(indent=2))
        return self._version(name, number, self._read_aliases(name))

    def models(self) -> list[str]:
        """Names with at least one complete version, sorted."""
        if not self._models_dir.is_dir():
            return []
        return sorted(
            d.name
            for d in self._models_dir.iterdir()
            if d.is_dir() and self._numbers(d.name, complete=True)
        )

    def versions(self, name: str) -> list[ModelVersion]:
        """Every complete version of ``name``, oldest (v1) first."""
        numbers = self._require(name)
        aliases = self._read_aliases(name)
        return [self._version(name, n, aliases) for n in numbers]

    def get(self, name: str, ref: str = "champion") -> ModelVersion:
        """Resolve ``ref``: ``vN``, ``N``, ``latest`` (highest N), or an alias in ``ALIASES``."""
        numbers = self._require(name)
        aliases = self._read_aliases(name)
        return self._version(name, self._resolve(name, ref, numbers, aliases), aliases)

    def aliases(self, name: str) -> dict[str, str]:
        """Alias -> ``vN`` for the aliases ``name`` has set."""
        self._require(name)
        return self._read_aliases(name)

    def set_alias(self, name: str, alias: str, ref: str) -> ModelVersion:
        """Point ``alias`` at the version ``ref`` resolves to (which may be the other alias)."""
        _check_alias(alias)
        target = self.get(name, ref)
        aliases = {**self._read_aliases(name), alias: target.version}
        self._write_aliases(name, aliases)
        return self._version(name, int(target.version[1:]), aliases)

    def clear_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from ``name``; clearing an alias that is not set does nothing."""
        _check_alias(alias)
        self._require(name)
        aliases = self._read_aliases(name)
        if aliases.pop(alias, None) is not None:
            self._write_aliases(name, aliases)

    def export(self, name: str, ref: str, dest: Path, *, overwrite: bool = False) -> Path:
        """Write the version as a plain directory (see ``load_version_dir``); return ``dest``.

        A non-empty ``dest`` is refused with ``FileExistsError`` unless ``overwrite``.
        """
        return write_version_dir(self.get(name, ref), dest, overwrite=overwrite, skip=_STORE_FILES)

    def _numbers(self, name: str, *, complete: bool) -> list[int]:
        """Version numbers on disk, sorted; ``complete`` keeps those with a ``lineage.json``."""
        model_dir = self._models_dir / name
        if not model_dir.is_dir():
            return []
        return sorted(
            int(match[1])
            for d in model_dir.iterdir()
            if (match := _VERSION_DIR.fullmatch(d.name))
            and d.is_dir()
            and (not complete or (d / LINEAGE_FILE).is_file())
        )

    def _require(self, name: str) -> list[int]:
        """The complete version numbers of ``name``; ``RegistryError`` when there are none."""
        # Checked against the listing, so a name is never used as a path before it is known.
        if name not in self.models():
            known = ", ".join(self.models()) or "none"
            raise RegistryError(
                f"no model named {name!r} in the registry at {self.root} (models: {known})"
            )
        return self._numbers(name, complete=True)

    def _resolve(self, name: str, ref: str, numbers: list[int], aliases: dict[str, str]) -> int:
        available = f"versions: {_format_versions(numbers)}; aliases: {aliases or 'none'}"
        if ref == "latest":
            return numbers[-1]
        if ref in ALIASES:
            if ref not in aliases:
                raise RegistryError(f"model {name!r} has no {ref} ({available})")
            ref = aliases[ref]
        match = _VERSION_REF.fullmatch(ref)
        if match is None:
            raise RegistryError(
                f"{ref!r} names no version of {name!r}: use vN, N, latest, "
                f"{' or '.join(ALIASES)} ({available})"
            )
        number = int(match[1])
        if number not in numbers:
            raise RegistryError(f"model {name!r} has no version v{number} ({available})")
        return number

    def package(self, name: str, ref: str, target: ModelStore) -> StoredModel:
        """Copy the version ``ref`` resolves to into another BentoML model store (``bentoml
        build`` packages it from BentoML's own, ``BENTOML_HOME``) under the same tag; return
        the copy there. The artifact is checked against the registry's record first. A model
        of that tag already in ``target`` is reused if it records the same artifact, and
        refused with ``ArtifactIntegrityError`` if not (another registry's ``v1``, say)."""
        version = self.get(name, ref)
        verify_pinned(version.path, _registry_pin(version))
        tag = Tag(name, version.version)
        try:
            existing = target.get(tag)
        except NotFound:
            return self._store.get(tag).save(target)
        theirs = existing.info.labels.get("artifact_sha256")
        if theirs != version.registered_sha256:
            raise ArtifactIntegrityError(
                f"the BentoML model store already holds {tag} with artifact sha256 "
                f"{theirs}, not this registry's {version.registered_sha256}; remove it "
                f"(`bentoml models delete {tag}`) or package another version"
            )
        return existing

    def _version(self, name: str, number: int, aliases: dict[str, str]) -> ModelVersion:
        # An exact tag: ModelStore.get falls back to prefix matching ("v1" -> "v10") only
        # when the exact directory is missing, and _numbers has just seen it.
        model = self._store.get(Tag(name, f"v{number}"))
        return stored_version(model, tuple(a for a in ALIASES if aliases.get(a) == f"v{number}"))

    def _alias_file(self, name: str) -> Path:
        return self._aliases_dir / f"{name}.json"

    def _read_aliases(self, name: str) -> dict[str, str]:
        path = self._alias_file(name)
        try:
            stored = _ALIAS_FILE.validate_json(path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValidationError as e:
            raise RegistryError(f"alias file {path} is invalid: {e}") from e
        return {a: stored[a] for a in ALIASES if a in stored}

    def _write_aliases(self, name: str, aliases: dict[str, str]) -> None:
        write_text_atomic(self._alias_file(name), _ALIAS_FILE.dump_json(aliases, indent=2).decode())


def stored_version(model: StoredModel, aliases: tuple[str, ...] = ()) -> ModelVersion:
    """A registered version from its BentoML model: in a registry, or wherever ``package``
    copied it (a Bento's model store). Its lineage is checked against the manifest."""
    path = Path(model.path)
    recorded = model.info.labels.get("artifact_sha256")
    return ModelVersion(
        name=model.tag.name,
        version=str(model.tag.version),
        path=path,
        lineage=read_lineage(path),
        created_at=model.creation_time,
        aliases=aliases,
        registered_sha256=recorded if isinstance(recorded, str) else None,
    )


def _registry_pin(version: ModelVersion) -> dict[str, str]:
    recorded = version.registered_sha256
    return (
        {f"the registry's record of {version.name}:{version.version}": recorded} if recorded else {}
    )


def _check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise RegistryError(f"unknown alias {alias!r}: aliases are {', '.join(ALIASES)}")


def _format_versions(numbers: list[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers) or "none"
