"""Networks for tabular requests: embeddings for categorical ids, an MLP over everything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class TabularNetConfig:
    vocabulary_sizes: list[int]
    numeric_width: int
    embedding_dim: int = 8
    hidden: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tabular_mlp", **asdict(self)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TabularNetConfig:
        if state.get("kind") != "tabular_mlp":
            raise ValueError(f"unknown network kind {state.get('kind')!r}")
        return cls(**{k: v for k, v in state.items() if k != "kind"})


class TabularNet(nn.Module):
    """One logit per row. Small categories get small embeddings (never wider than needed)."""

    def __init__(self, config: TabularNetConfig) -> None:
        super().__init__()
        self.config = config
        tables = [
            nn.Embedding(size, min(config.embedding_dim, max(2, size // 2)))
            for size in config.vocabulary_sizes
        ]
        self.embeddings = nn.ModuleList(tables)
        width = sum(table.embedding_dim for table in tables) + config.numeric_width
        layers: list[nn.Module] = []
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = [table(categorical[:, i]) for i, table in enumerate(self.embeddings)]
        logits: torch.Tensor = self.mlp(torch.cat([*embedded, numeric], dim=1))
        return logits.squeeze(1)
