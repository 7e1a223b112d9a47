"""The drift monitor on a million logged predictions (docs/monitoring.md, "Scale").

Input, GENERATED (seeded; not reference data): 1,000,000 prediction-log records x 30 features
(24 numeric: continuous, discrete with ties, with nulls; 6 categorical), a third of them
shifted, written with the log's own encoder into four segment files as four serving workers
would; and a 5,000-row reference sample drawn from the unshifted distribution. Not timed.

Timed, in a child process whose peak RSS is read (``ru_maxrss``): reading the window back
into columns as the monitor does for the file sink (``segments_frame``: pyarrow's JSON reader,
merge, dedupe), the drift of every column
(``stattests``, every row), and Evidently's HTML report on the ``monitor_report_rows`` sample.
Then, in another child, Evidently's own scores on the whole million (its ``ValueDrift`` metric
per column, the one ``DataDriftPreset`` generates, without the preset's dataset tables, which
compute every column again), to check the values are equal. Targets: <= 60 s, <= 4 GiB.
The champion's scoring of its 5,000 reference rows is constant in the log's size, not included.

Usage: ``nice -n 10 python bench/monitor.py [--rows N]`` (``make bench-monitor``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from harness import ROOT, write_results

from loopline.monitoring.drift import Reference, compute_drift
from loopline.monitoring.report import run_report
from loopline.monitoring.stattests import ColumnKind
from loopline.monitoring.window import segments_frame
from loopline.predictions import PredictionRecord, encode
from loopline.settings import Settings
from loopline.spec import DriftSpec

COLUMNS: dict[str, ColumnKind] = {
    **{f"num_{i:02d}": "numeric" for i in range(24)},
    **{f"cat_{i}": "categorical" for i in range(6)},
}
SPEC = DriftSpec(stattest_threshold=0.1, drift_share=0.3, min_rows=500)
REPORT_ROWS = Settings().monitor_report_rows
SEGMENTS = 4
START = datetime(2026, 1, 1, tzinfo=UTC)


def generated(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """GENERATED columns: the reference (unshifted) or the logged window (every third column
    shifted)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(24):
        shift = 0.4 if shifted and i % 3 == 0 else 0.0
        if i % 4 == 0:
            values = rng.poisson(5 + 5 * shift, rows).astype(float)
        else:
            values = np.round(rng.normal(shift, 1.0, rows), 3)
        values[rng.random(rows) < 0.05] = np.nan
        columns[f"num_{i:02d}"] = values
    for i in range(6):
        weights = np.linspace(1, 3 if shifted and i % 3 == 0 else 1, 12)
        columns[f"cat_{i}"] = rng.choice(
            [f"v{k}" for k in range(12)], rows, p=weights / weights.sum()
        )
    columns["probability"] = rng.beta(2, 5, rows)
    return pd.DataFrame(columns)


def write_log(directory: Path, rows: int) -> None:
    frame = generated(rows, 2, shifted=True)
    names = list(COLUMNS)
    handles = [(directory / f"seg-{i}.jsonl").open("wb") for i in range(SEGMENTS)]
    values = frame[names].to_numpy(object)
    probability = frame["probability"].to_numpy()
    for row in range(rows):
        features = {
            n: None if isinstance(v, float) and np.isnan(v) else v
            for n, v in zip(names, values[row], strict=True)
        }
        stamp = START + timedelta(milliseconds=row)
        record = PredictionRecord(
            f"r{row}",
            stamp,
            "bench",
            "v1",
            "predict_batch",
            stamp,
            "flight_id",
            f"f{row}",
            {},
            features,
            {"view": "fresh"},
            float(probability[row]),
            False,
        )
        handles[row % SEGMENTS].write(encode(record))
    for handle in handles:
        handle.close()


def monitor_phase(directory: Path) -> dict[str, Any]:
    reference = generated(5000, 1, shifted=False)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    import evidently  # noqa: F401 (timed apart: a fixed cost of every run)

    timings["import_evidently_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    current = segments_frame(directory, "bench", "v1", COLUMNS)
    timings["read_and_fold_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    drift = compute_drift(Reference(reference, COLUMNS), current, SPEC)
    timings["drift_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    shown = current.sample(min(REPORT_ROWS, len(current)), random_state=7)
    run = run_report(reference, shown, COLUMNS, SPEC, name="bench", timestamp=START)
    run.snapshot.save_html(str(directory / "report.html"))
    timings["evidently_report_sample_s"] = time.perf_counter() - clock
    return {
        "rows": len(current),
        "timings": timings,
        "total_s": sum(timings.values()),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "scores": {f.name: f.score for f in drift.features},
        "share": drift.share,
    }


def evidently_phase(directory: Path) -> dict[str, Any]:
    reference = generated(5000, 1, shifted=False)
    current = segments_frame(directory, "bench", "v1", COLUMNS)
    clock = time.perf_counter()
    drift = run_report(
        reference, current, COLUMNS, SPEC, name="full", timestamp=START, scores_only=True
    ).drift
    return {
        "evidently_full_s": time.perf_counter() - clock,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "scores": {f.name: f.score for f in drift.features},
        "share": drift.share,
    }


def child(phase: str, directory: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--dir", str(directory)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["monitor", "evidently"])
    parser.add_argument("--dir", type=Path)
    arguments = parser.parse_args()
    if arguments.phase:
        phase = monitor_phase if arguments.phase == "monitor" else evidently_phase
        print(json.dumps(phase(arguments.dir)))
        return
    started = datetime.now(UTC).isoformat()
    with tempfile.TemporaryDirectory(prefix="loopline-bench-monitor-") as scratch:
        directory = Path(scratch)
        write_log(directory, arguments.rows)
        fast = child("monitor", directory)
        print(json.dumps({k: v for k, v in fast.items() if k != "scores"}), flush=True)
        full = child("evidently", directory)
    worst = max(
        abs(fast["scores"][n] - full["scores"][n]) / max(abs(full["scores"][n]), 1e-12)
        for n in COLUMNS
    )
    payload = {
        "rows": fast["rows"],
        "columns": len(COLUMNS),
        "monitor": fast,
        "evidently": full,
        "worst_relative_difference": worst,
    }
    text = (
        f"# Monitor on {fast['rows']:,} GENERATED logged rows x {len(COLUMNS)} features\n\n"
        "| step | seconds |\n|---|---:|\n"
        + "".join(f"| {k} | {v:.1f} |\n" for k, v in fast["timings"].items())
        + f"| **monitor total** | **{fast['total_s']:.1f}** |\n"
        f"| Evidently ValueDrift, every row (check) | {full['evidently_full_s']:.1f} |\n\n"
        f"Peak RSS: monitor {fast['peak_rss_gib']:.2f} GiB, Evidently on every row "
        f"{full['peak_rss_gib']:.2f} GiB. Drift share {fast['share']:.3f} (Evidently "
        f"{full['share']:.3f}); largest relative difference of a score: {worst:.2e}.\n"
    )
    print(text)
    write_results(ROOT / "bench" / "results", "monitor", started, payload, text)


if __name__ == "__main__":
    main()
