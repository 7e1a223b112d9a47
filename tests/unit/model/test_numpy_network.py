"""The numpy forward used for serving gives the PyTorch module's probabilities.

Weights and inputs are GENERATED (seeded), not reference data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loopline.model.network import TabularNet, TabularNetConfig
from loopline.model.numpy_network import NumpyTabularNet


def network() -> TabularNet:
    torch.manual_seed(0)
    return TabularNet(TabularNetConfig(vocabulary_sizes=[5, 40, 3], numeric_width=6)).eval()


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_probabilities_equal_the_modules(rows: int) -> None:
    net = network()
    generator = np.random.default_rng(rows)
    ids = np.stack([generator.integers(0, size, rows) for size in (5, 40, 3)], axis=1)
    numeric = generator.normal(0, 3, (rows, 6)).astype(np.float32)
    with torch.inference_mode():
        expected = torch.sigmoid(net(torch.from_numpy(ids), torch.from_numpy(numeric))).numpy()
    served = NumpyTabularNet(net)(ids, numeric)
    assert served.shape == (rows,)
    assert served.dtype == np.float32
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)


def test_a_layer_it_cannot_run_is_refused() -> None:
    net = network()
    net.mlp.append(nn.Tanh())
    with pytest.raises(TypeError, match="Tanh"):
        NumpyTabularNet(net)
