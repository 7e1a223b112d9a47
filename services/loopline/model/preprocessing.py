"""The one transformation shared by training and serving, fitted once and saved as JSON.

Categorical columns map to integer ids (0 = unknown or missing, so unseen carriers or tail
numbers are valid input); numeric columns are filled with the training median, standardised,
clipped, and paired with a 0/1 "was missing" indicator so the network can tell a filled value
from an observed one.

``transform`` works on columns of plain Python values, which is what a served batch is (a
pandas frame would cost ~5 ms per call whatever its size, more than the rest of a prediction);
``transform_frame`` feeds it a frame's columns for training and evaluation, so both read every
value the same way. pandas is imported only by ``fit`` and ``transform_frame``: serving does
without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
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
        import pandas as pd

        vocabularies = {}
        for column in categorical:
            counts = _as_text(frame[column]).value_counts()
            vocabularies[column] = sorted(counts[counts >= min_category_count].index.dropna())
        stats = {}
        for column in numeric:
            values = pd.Series([_number(v) for v in frame[column].tolist()], dtype="float64")
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

    def transform(
        self, columns: Mapping[str, Sequence[Any]], rows: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(categorical ids [n, c] int64, numeric [n, 2m] float32)`` for ``rows`` rows given
        as columns of Python values (None = missing). Absent columns are missing in every row;
        categories compare as text (7 and "7" are the same hour), numbers as ``float``."""
        absent = [None] * rows
        ids = np.array(
            [
                [lookup.get(_text(v), UNKNOWN) for v in columns.get(column, absent)]
                for column, lookup in self._ids.items()
            ],
            dtype=np.int64,
        ).reshape(len(self._ids), rows)
        raw = np.array(
            [[_number(v) for v in columns.get(column, absent)] for column in self.numeric],
            dtype=np.float64,
        ).reshape(len(self.numeric), rows)
        missing = ~np.isfinite(raw.T)
        median, mean, std = self._stats
        filled = np.where(missing, median, raw.T)
        numeric = np.empty((rows, self.numeric_width), dtype=np.float32)
        numeric[:, 0::2] = np.clip((filled - mean) / std, -CLIP, CLIP)
        numeric[:, 1::2] = missing
        return np.ascontiguousarray(ids.T), numeric

    def transform_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``transform`` of a frame's rows (missing values: None, NaN, NaT, pd.NA)."""
        wanted = [c for c in [*self.categorical, *self.numeric] if c in frame]
        columns = {
            c: frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in wanted
        }
        return self.transform(columns, len(frame))

    @cached_property
    def _ids(self) -> dict[str, dict[str | None, int]]:
        return {
            column: {value: index + 1 for index, value in enumerate(vocabulary)}
            for column, vocabulary in self.categorical.items()
        }

    @cached_property
    def _stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        stats = self.numeric.values()
        return (
            np.array([s.median for s in stats], dtype=np.float64),
            np.array([s.mean for s in stats], dtype=np.float64),
            np.array([s.std for s in stats], dtype=np.float64),
        )

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
    """A column's categories as ``transform`` reads them (``_text`` of each value)."""
    return values.map(_text, na_action="ignore")


def _text(value: Any) -> str | None:
    """The category a value is: its ``str``; None and NaN are missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> float:
    """A value as a number; None, and anything that is not one, is missing (NaN)."""
    if value is None or isinstance(value, bool):
        return math.nan if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
