"""Model artifacts: plain files, a sha256 manifest, nothing unpickled on load.

PyTorch is imported only by the functions that need it, so the registry can hash and verify
artifacts without it.

Layout of an artifact directory::

    network.json              architecture (TabularNetConfig)
    preprocessing.json        fitted Preprocessor
    weights.safetensors       the state dict (tensors only: loading cannot run code)
    reference_sample.parquet  training rows kept as the drift reference
    manifest.json             sha256 of each file above

The artifact's identity is the sha256 of ``manifest.json``, which lists the sha256 of every file:
a hash over the whole content. The registry records it at registration; ``load_model`` refuses a
directory whose manifest or files do not match, and parses the very bytes it hashed. A manifest
can be recomputed by whoever rewrites a file, so self-consistency alone proves nothing:
``verify_pinned`` checks the recomputed identity against values recorded elsewhere (the
registry's record, ``LOOPLINE_MODEL_SHA256``) before anything in the directory is parsed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.errors import ArtifactIntegrityError
from loopline.model.preprocessing import Preprocessor

if TYPE_CHECKING:
    import pandas as pd

    from loopline.model.network import TabularNet

FORMAT = "loopline-artifact/1"
MANIFEST = "manifest.json"
NETWORK = "network.json"
PREPROCESSING = "preprocessing.json"
WEIGHTS = "weights.safetensors"
REFERENCE_SAMPLE = "reference_sample.parquet"
FILES = (NETWORK, PREPROCESSING, WEIGHTS, REFERENCE_SAMPLE)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class TrainedModel:
    """A network with the preprocessing it was trained with: rows in, probabilities out."""

    network: TabularNet
    preprocessor: Preprocessor

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        categorical, numeric = self.preprocessor.transform_frame(frame)
        self.network.eval()
        import torch

        with torch.inference_mode():
            logits = self.network(torch.from_numpy(categorical), torch.from_numpy(numeric))
        return torch.sigmoid(logits).numpy().astype(np.float64)


def save_model(model: TrainedModel, reference_sample: pd.DataFrame, directory: Path) -> str:
    """Write the artifact into ``directory`` and return its sha256 (of the manifest)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / NETWORK).write_text(json.dumps(model.network.config.to_dict(), indent=2))
    (directory / PREPROCESSING).write_text(json.dumps(model.preprocessor.to_dict(), indent=2))
    state = {k: v.contiguous() for k, v in model.network.state_dict().items()}
    from safetensors.torch import save_file

    save_file(state, str(directory / WEIGHTS))
    reference_sample.to_parquet(directory / REFERENCE_SAMPLE, index=False)
    manifest = {"format": FORMAT, "files": {name: sha256_file(directory / name) for name in FILES}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return sha256_file(directory / MANIFEST)


def read_reference_columns(directory: Path, rows: int) -> dict[str, list[Any]]:
    """The reference sample's first ``rows`` rows as columns of Python values (None where
    missing; timestamps as epoch seconds), read with pyarrow alone: serving does without pandas,
    whose import is a tenth of the predictor's start-up."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    batches = pq.ParquetFile(directory / REFERENCE_SAMPLE).iter_batches(batch_size=rows)
    batch = next(batches)
    columns: dict[str, list[Any]] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_timestamp(column.type):  # as integers: tz-aware values import pandas
            per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[column.type.unit]
            ticks = pc.cast(column, pa.int64()).to_pylist()
            columns[name] = [None if t is None else t / per_second for t in ticks]
        else:
            columns[name] = column.to_pylist()
    return columns


def verify_artifact(directory: Path, expected_sha256: str | None) -> str:
    """Raise ``ArtifactIntegrityError`` unless every file matches the manifest (and the
    manifest matches ``expected_sha256`` when one is given); return the artifact's sha256."""
    return _verified(directory, expected_sha256, read=())[0]


def verify_pinned(directory: Path, pins: Mapping[str, str]) -> str:
    """The artifact's sha256, recomputed from its files, after checking it against each pin
    (where it is recorded -> the sha256 recorded there). ``ArtifactIntegrityError`` at the
    first pin it differs from, before any file but the manifest is parsed."""
    actual = verify_artifact(directory, None)
    for source, expected in pins.items():
        if actual != expected.lower():
            raise ArtifactIntegrityError(
                f"the artifact in {directory} is not the pinned one: its content hashes to "
                f"sha256 {actual} ({MANIFEST} and every file it lists), {source} pins "
                f"{expected.lower()}; refusing to serve it. Serve the version the pin names "
                "or pin the one you mean to serve (`loopline models list --json`)"
            )
    return actual


def _verified(
    directory: Path, expected_sha256: str | None, read: Collection[str]
) -> tuple[str, dict[str, bytes]]:
    """The manifest's sha256 and the contents of the files in ``read``, each checked against
    the sha256 the manifest lists (so what is parsed is what was hashed)."""
    manifest_path = directory / MANIFEST
    try:
        manifest_bytes = manifest_path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ArtifactIntegrityError(
            f"{directory} has no {MANIFEST}: not a Loopline artifact"
        ) from None
    actual = hashlib.sha256(manifest_bytes).hexdigest()
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ArtifactIntegrityError(
            f"{manifest_path} has sha256 {actual}, the registry recorded {expected_sha256}"
        )
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as error:
        raise ArtifactIntegrityError(f"{manifest_path} is not JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArtifactIntegrityError(f"{manifest_path}: unknown format {found!r}")
    files = manifest.get("files")
    if (
        not isinstance(files, dict)
        or set(files) != set(FILES)
        or not all(isinstance(v, str) for v in files.values())
    ):
        raise ArtifactIntegrityError(
            f"{manifest_path} must list the sha256 of exactly these files: {', '.join(FILES)}"
        )
    contents: dict[str, bytes] = {}
    for name in FILES:
        path = directory / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"{path} is missing")
        if name in read:
            contents[name] = path.read_bytes()
            digest = hashlib.sha256(contents[name]).hexdigest()
        else:
            digest = sha256_file(path)
        if digest != files[name]:
            raise ArtifactIntegrityError(f"{path} does not match its sha256 in {MANIFEST}")
    return actual, contents


def load_model(directory: Path, expected_sha256: str | None) -> TrainedModel:
    """Verify, then load from the bytes that were verified. Weights come from safetensors, so
    no code is ever unpickled."""
    _, data = _verified(directory, expected_sha256, read=(NETWORK, PREPROCESSING, WEIGHTS))
    from safetensors.torch import load as load_tensors

    from loopline.model.network import TabularNet, TabularNetConfig

    config = TabularNetConfig.from_dict(json.loads(data[NETWORK]))
    preprocessor = Preprocessor.from_dict(json.loads(data[PREPROCESSING]))
    network = TabularNet(config)
    network.load_state_dict(load_tensors(data[WEIGHTS]))
    network.eval()
    return TrainedModel(network=network, preprocessor=preprocessor)
