"""``loopline data prepare``: write a dataset's sources as parquet into the feature repo.

Every dataset writes ``requests`` (prediction requests with a ``split`` column: ``history`` or
``live``), its label tables and its feature sources, plus ``manifest.json`` with the time span
of each split so later jobs (materialize, replay) need no dataset-specific knowledge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from loopline.data import nycflights
from loopline.errors import DataNotPreparedError
from loopline.settings import Settings

DATASETS: dict[str, Callable[[Callable[[str], None] | None], nycflights.FlightSources]] = {
    nycflights.DATASET: nycflights.build_sources,
}
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DataManifest:
    dataset: str
    start: datetime
    live_from: datetime
    end: datetime
    rows: dict[str, int]

    def to_json(self) -> str:
        state = asdict(self)
        for key in ("start", "live_from", "end"):
            state[key] = state[key].isoformat()
        return json.dumps(state, indent=2)

    @classmethod
    def from_json(cls, text: str) -> DataManifest:
        state = json.loads(text)
        for key in ("start", "live_from", "end"):
            state[key] = datetime.fromisoformat(state[key])
        return cls(**state)


def prepare(
    settings: Settings, dataset: str, progress: Callable[[str], None] | None = None
) -> DataManifest:
    if dataset not in DATASETS:
        raise DataNotPreparedError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    sources = DATASETS[dataset](progress)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for name, table in sources.tables.items():
        _write_atomically(table, settings.data_dir / f"{name}.parquet")
    requests = sources.tables["requests"]
    live = requests.loc[requests["split"] == "live", "event_timestamp"]
    manifest = DataManifest(
        dataset=dataset,
        start=requests["event_timestamp"].min().floor("D").to_pydatetime(),
        live_from=live.min().floor("D").to_pydatetime(),
        end=requests["event_timestamp"].max().ceil("D").to_pydatetime(),
        rows={name: len(table) for name, table in sources.tables.items()},
    )
    (settings.data_dir / MANIFEST).write_text(manifest.to_json())
    return manifest


def _write_atomically(table: pd.DataFrame, path: Path) -> None:
    # DuckDB (Feast's offline store) cannot cast nanosecond UTC timestamps; store microseconds.
    timestamps = table.select_dtypes(include=["datetimetz"]).columns
    table = table.astype({column: "datetime64[us, UTC]" for column in timestamps})
    partial = path.with_suffix(".parquet.partial")
    table.to_parquet(partial, index=False)
    partial.replace(path)


def read_manifest(settings: Settings) -> DataManifest:
    path = settings.data_dir / MANIFEST
    if not path.is_file():
        raise DataNotPreparedError(f"{path} not found: run `loopline data prepare` first")
    return DataManifest.from_json(path.read_text())


def read_table(
    settings: Settings,
    name: str,
    columns: Sequence[str] | None = None,
    between: tuple[datetime, datetime] | None = None,
) -> pd.DataFrame:
    """A prepared table: its ``columns`` (every one by default), the rows whose
    ``event_timestamp`` is in ``[start, end)`` when ``between`` is given (filtered as the file
    is read, not after)."""
    path = settings.data_dir / f"{name}.parquet"
    if not path.is_file():
        raise DataNotPreparedError(f"{path} not found: run `loopline data prepare` first")
    filters = None
    if between is not None:
        start, end = (pd.Timestamp(moment) for moment in between)
        filters = [("event_timestamp", ">=", start), ("event_timestamp", "<", end)]
    return pd.read_parquet(
        path, columns=None if columns is None else list(columns), filters=filters
    )
