"""The one transformation shared by training and serving, fitted once and saved as JSON.

Categorical columns map to integer ids (0 = unknown or missing, so unseen carriers or tail
numbers are valid input); numeric columns are filled with the training median, standardised,
clipped, and paired with a 0/1 "was missing" indicator so the network can tell a filled value
from an observed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

UNKNOWN = 0
CLIP = 5.0


@dataclass(frozen=True)
class NumericStats:
    median: float
    mean: float
    std: float


@dataclass(frozen=True)
class Preprocessor:
    """Fitted state; ``to_dict``/``from_dict`` round-trip it through JSON."""

    categorical: dict[str, list[str]]
    numeric: dict[str, NumericStats]

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        categorical: Sequence[str],
        numeric: Sequence[str],
        min_category_count: int,
    ) -> Preprocessor:
        vocabularies = {}
        for column in categorical:
            counts = _as_text(frame[column]).value_counts()
            vocabularies[column] = sorted(counts[counts >= min_category_count].index.dropna())
        stats = {}
        for column in numeric:
            values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            median = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(median)
            std = float(filled.std())
            stats[column] = NumericStats(
                median=median, mean=float(filled.mean()), std=std if std > 1e-9 else 1.0
            )
        return cls(categorical=vocabularies, numeric=stats)

    @property
    def vocabulary_sizes(self) -> list[int]:
        """Embedding table sizes, the unknown id included."""
        return [len(values) + 1 for values in self.categorical.values()]

    @property
    def numeric_width(self) -> int:
        return 2 * len(self.numeric)

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(categorical ids [n, c] int64, numeric [n, 2m] float32)`` for a frame of rows.

        Columns the frame lacks are treated as missing for every row.
        """
        rows = len(frame)
        ids = np.zeros((rows, len(self.categorical)), dtype=np.int64)
        for position, (column, vocabulary) in enumerate(self.categorical.items()):
            if column in frame:
                lookup = {value: index + 1 for index, value in enumerate(vocabulary)}
                texts = _as_text(frame[column])
                ids[:, position] = texts.map(lookup).fillna(UNKNOWN).to_numpy(dtype=np.int64)
        numeric = np.zeros((rows, self.numeric_width), dtype=np.float32)
        for position, (column, stats) in enumerate(self.numeric.items()):
            if column in frame:
                values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
            else:
                values = np.full(rows, np.nan)
            missing = ~np.isfinite(values)
            values = np.where(missing, stats.median, values)
            numeric[:, 2 * position] = np.clip((values - stats.mean) / stats.std, -CLIP, CLIP)
            numeric[:, 2 * position + 1] = missing
        return ids, numeric

    def defaults(self) -> dict[str, float]:
        """The value a missing numeric feature is served as (before scaling)."""
        return {column: stats.median for column, stats in self.numeric.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": self.categorical,
            "numeric": {column: asdict(stats) for column, stats in self.numeric.items()},
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Preprocessor:
        return cls(
            categorical={k: list(v) for k, v in state["categorical"].items()},
            numeric={k: NumericStats(**v) for k, v in state["numeric"].items()},
        )


def _as_text(values: pd.Series) -> pd.Series:
    """Categories compare as text, so 7 (int) and "7" (JSON string) are the same hour."""
    return values.astype("string").astype(object).where(values.notna())
