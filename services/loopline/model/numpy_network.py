"""A ``TabularNet``'s forward pass in numpy, for serving.

The predictor calls the network once per micro-batch of a few rows, between a great deal of other
Python (HTTP, features, the log), where PyTorch's dispatcher costs more than the arithmetic
(docs/decisions.md, §3). The network is a handful of table lookups and three matrix products,
so numpy does the same arithmetic in float32; the results differ from
PyTorch's in the last bits (≈ 1e-7), and the predictor checks them against the module itself at
start-up (``InferenceCore.self_check``).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from loopline.model.network import TabularNet


class NumpyTabularNet:
    """``sigmoid(network(categorical, numeric))`` with the module's weights, copied once."""

    def __init__(self, network: TabularNet) -> None:
        self._tables = [
            table.weight.detach().numpy().copy()
            for table in network.embeddings
            if isinstance(table, nn.Embedding)
        ]
        self._layers: list[tuple[np.ndarray, np.ndarray] | None] = []  # None: ReLU
        for layer in network.mlp:
            if isinstance(layer, nn.Linear):
                weight = layer.weight.detach().numpy().T.copy()
                self._layers.append((weight, layer.bias.detach().numpy().copy()))
            elif isinstance(layer, nn.ReLU):
                self._layers.append(None)
            elif not isinstance(layer, nn.Dropout):  # dropout is the identity in inference
                raise TypeError(f"no numpy forward for {type(layer).__name__}")

    def __call__(self, categorical: np.ndarray, numeric: np.ndarray) -> np.ndarray:
        """Probabilities, float32 ``[n]``, for ids ``[n, c]`` and numeric inputs ``[n, w]``."""
        embedded = [table[categorical[:, i]] for i, table in enumerate(self._tables)]
        x = np.concatenate([*embedded, numeric], axis=1)
        for layer in self._layers:
            x = np.maximum(x, 0) if layer is None else x @ layer[0] + layer[1]
        probabilities: np.ndarray = 1 / (1 + np.exp(-x[:, 0]))
        return probabilities
