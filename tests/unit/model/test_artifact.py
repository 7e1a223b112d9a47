"""Artifact save/load round trip on a small untrained network (GENERATED inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loopline.model.artifact import MANIFEST, TrainedModel, load_model, save_model, sha256_file
from loopline.model.network import TabularNet, TabularNetConfig
from loopline.model.preprocessing import Preprocessor

FRAME = pd.DataFrame({"carrier": ["UA", "AA"] * 10, "temp": np.linspace(0, 30, 20)})


def small_model() -> TrainedModel:
    torch.manual_seed(0)
    prep = Preprocessor.fit(FRAME, ["carrier"], ["temp"], min_category_count=1)
    config = TabularNetConfig(prep.vocabulary_sizes, prep.numeric_width, hidden=[4])
    return TrainedModel(TabularNet(config), prep)


def test_a_saved_model_predicts_the_same_after_loading(tmp_path: Path) -> None:
    model = small_model()
    sha256 = save_model(model, FRAME, tmp_path)
    assert sha256 == sha256_file(tmp_path / MANIFEST)
    loaded = load_model(tmp_path, sha256)
    np.testing.assert_allclose(model.predict_proba(FRAME), loaded.predict_proba(FRAME))


def test_the_manifest_lists_every_file_with_its_sha256(tmp_path: Path) -> None:
    save_model(small_model(), FRAME, tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["format"] == "loopline-artifact/1"
    for name, digest in manifest["files"].items():
        assert sha256_file(tmp_path / name) == digest
