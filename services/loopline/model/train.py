"""Training loop for ``TabularNet``: AdamW, early stopping on validation ROC AUC."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from loopline.model.artifact import TrainedModel
from loopline.model.network import TabularNet, TabularNetConfig
from loopline.model.preprocessing import Preprocessor
from loopline.spec import ModelSpec


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    train_loss: float
    validation_roc_auc: float


@dataclass
class TrainingResult:
    model: TrainedModel
    epochs: list[EpochReport]
    best_epoch: int
    seconds: float


def train_network(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    labels: tuple[np.ndarray, np.ndarray],
    numeric_features: Sequence[str],
    spec: ModelSpec,
    seed: int,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainingResult:
    """Fit preprocessing on ``train``, train, and keep the weights of the best epoch."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    preprocessor = Preprocessor.fit(
        train,
        categorical=spec.fields_of("categorical"),
        numeric=[*spec.fields_of("numeric"), *numeric_features],
        min_category_count=spec.network.min_category_count,
    )
    network = TabularNet(
        TabularNetConfig(
            vocabulary_sizes=preprocessor.vocabulary_sizes,
            numeric_width=preprocessor.numeric_width,
            embedding_dim=spec.network.embedding_dim,
            hidden=list(spec.network.hidden),
            dropout=spec.network.dropout,
        )
    )
    model = TrainedModel(network=network, preprocessor=preprocessor)
    train_ids, train_numeric = (torch.from_numpy(a) for a in preprocessor.transform_frame(train))
    train_labels = torch.from_numpy(labels[0].astype(np.float32))
    optimizer = torch.optim.AdamW(
        network.parameters(),
        lr=spec.training.learning_rate,
        weight_decay=spec.training.weight_decay,
    )
    loss_fn = nn.BCEWithLogitsLoss()
    best: tuple[float, int, dict[str, torch.Tensor]] = (-1.0, 0, {})
    reports: list[EpochReport] = []
    for epoch in range(1, spec.training.epochs + 1):
        network.train()
        order = torch.randperm(len(train_labels), generator=generator)
        total = 0.0
        for batch in order.split(spec.training.batch_size):
            optimizer.zero_grad()
            loss = loss_fn(network(train_ids[batch], train_numeric[batch]), train_labels[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        auc = float(roc_auc_score(labels[1], model.predict_proba(validation)))
        report = EpochReport(epoch, total / len(train_labels), auc)
        reports.append(report)
        if on_epoch:
            on_epoch(report)
        if auc > best[0]:
            best = (auc, epoch, copy.deepcopy(network.state_dict()))
        elif epoch - best[1] >= spec.training.patience:
            break
    network.load_state_dict(best[2])
    network.eval()
    return TrainingResult(model, reports, best[1], time.perf_counter() - started)
