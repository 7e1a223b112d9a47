"""Model artifacts: plain files, a sha256 manifest, nothing unpickled on load.

PyTorch is imported only by the functions that need it, so the registry can hash and verify
artifacts without it.

Layout of an artifact directory::

    network.json              architecture (TabularNetConfig)
    preprocessing.json        fitted Preprocessor
    weights.safetensors       the state dict (tensors only: loading cannot run code)
    reference_sample.parquet  training rows kept as the drift reference
    manifest.json             sha256 of each file above

The artifact's identity is the sha256 of ``manifest.json``: the registry records it, and
``load_model`` refuses a directory whose manifest or files do not match.
"""

from __future__ import annotations

import hashlib
import json
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


def verify_artifact(directory: Path, expected_sha256: str | None) -> None:
    """Raise ``ArtifactIntegrityError`` unless every file matches the manifest (and the
    manifest matches ``expected_sha256`` when one is given)."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactIntegrityError(f"{directory} has no {MANIFEST}: not a Loopline artifact")
    actual = sha256_file(manifest_path)
    if expected_sha256 is not None and actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"{manifest_path} has sha256 {actual}, the registry recorded {expected_sha256}"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise ArtifactIntegrityError(f"{manifest_path}: unknown format {manifest.get('format')!r}")
    for name, recorded in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"{path} is missing")
        if sha256_file(path) != recorded:
            raise ArtifactIntegrityError(f"{path} does not match its sha256 in {MANIFEST}")


def load_model(directory: Path, expected_sha256: str | None) -> TrainedModel:
    """Verify, then load. Weights come from safetensors, so no code is ever unpickled."""
    verify_artifact(directory, expected_sha256)
    from safetensors.torch import load_file

    from loopline.model.network import TabularNet, TabularNetConfig

    config = TabularNetConfig.from_dict(json.loads((directory / NETWORK).read_text()))
    preprocessor = Preprocessor.from_dict(json.loads((directory / PREPROCESSING).read_text()))
    network = TabularNet(config)
    network.load_state_dict(load_file(str(directory / WEIGHTS)))
    network.eval()
    return TrainedModel(network=network, preprocessor=preprocessor)
