"""One model version ready to score: its preprocessing and the numpy forward of its network.

A worker holds one (the champion) or two (a challenger in shadow or canary, see
``rollout_state``). ``Scorer.load`` verifies the artifact against the sha256 the registry (and
any pin) recorded before parsing it, and refuses to serve unless the numpy forward gives the
network's own probabilities on the artifact's reference sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from loopline.features.online import Lookup
from loopline.model.artifact import TrainedModel, load_model, read_reference_columns
from loopline.model.numpy_network import NumpyTabularNet
from loopline.serving.schema import TIMESTAMP, Row
from loopline.serving.served import ServedModel

SELF_CHECK_TOLERANCE = 1e-6
"""Largest difference in probability allowed between the numpy forward and PyTorch's."""
SELF_CHECK_ROWS = 2000


class Scorer:
    def __init__(self, served: ServedModel, model: TrainedModel) -> None:
        self.served = served
        self.version = served.version
        self.threshold = served.spec.decision_threshold
        self._network = model.network.eval()
        self._preprocessor = model.preprocessor
        self._forward = NumpyTabularNet(model.network)

    @classmethod
    def load(cls, served: ServedModel) -> Scorer:
        """The version ``served`` names, verified and self-checked (``ValueError`` if not)."""
        scorer = cls(served, load_model(served.path, served.sha256))
        scorer.self_check(read_reference_columns(served.path, SELF_CHECK_ROWS))
        return scorer

    def probabilities(
        self, rows: Sequence[Row], lookup: Lookup, fields: Sequence[str]
    ) -> list[float]:
        """``rows``' probabilities; ``fields``: the request fields, ``lookup`` their features."""
        if not rows:
            return []
        columns: dict[str, Any] = {n: [r.fields[n] for r in rows] for n in fields}
        columns.update(lookup.values)
        ids, numeric = self._preprocessor.transform(columns, len(rows))
        probabilities: list[float] = self._forward(ids, numeric).astype(np.float64).tolist()
        return probabilities

    def self_check(self, reference: dict[str, list[Any]]) -> None:
        """Refuse to serve unless the numpy forward gives the network's own probabilities
        (within float32 rounding) on ``reference``, rows of the artifact's reference sample as
        columns (``ValueError`` otherwise)."""
        ids, numeric = self._preprocessor.transform(reference, len(reference[TIMESTAMP]))
        with torch.inference_mode():
            logits = self._network(torch.from_numpy(ids), torch.from_numpy(numeric))
            expected = torch.sigmoid(logits).numpy()
        served = self._forward(ids, numeric)
        if not np.allclose(served, expected, rtol=0, atol=SELF_CHECK_TOLERANCE):
            difference = float(np.abs(served - expected).max())
            raise ValueError(f"the numpy forward differs from the network's by {difference:.2g}")
