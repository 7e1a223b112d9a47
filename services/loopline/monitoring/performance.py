"""Live performance of the window's predictions, from the labelled dataset (the outcome join).

Outcomes arrive late: a flight's label is known when it lands. The join's clock is the latest
outcome time it has written (world time, as the join itself keeps it), and it writes a
prediction as ``expired`` once that clock is ``outcome_max_delay_hours`` past the prediction's
``event_timestamp``. So a window prediction with no row yet is **pending** while its
``event_timestamp`` is within the maximum delay of that clock (its outcome may still come) and
**missing** only after: the recent end of a window is never counted as lost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopline.monitoring.window import EVENT_TIME, REQUEST_ID
from loopline.outcomes.dataset import EXPIRED, read_labelled
from loopline.outcomes.live import roc_auc as rank_roc_auc


@dataclass(frozen=True)
class WindowPerformance:
    predictions: int
    labelled: int
    """Joined to an outcome with a label."""
    without_label: int
    """Joined to an outcome whose status has none (cancelled, diverted)."""
    expired: int
    pending: int
    """No outcome yet, and it may still come."""
    missing: int
    """No row, though the join's clock is past the maximum delay: lost on the way."""
    roc_auc: float | None
    """On the labelled rows; None with fewer than ``min_labels`` or a single class."""
    positive_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_performance(
    window: pd.DataFrame, labelled_dir: Path, label: str, max_delay: timedelta, min_labels: int
) -> WindowPerformance:
    """``window``: one row per prediction (``request_id``, ``event_timestamp``)."""
    if window.empty:
        return WindowPerformance(0, 0, 0, 0, 0, 0, None, None)
    rows = read_labelled(labelled_dir, since=window[EVENT_TIME].min().to_pydatetime())
    clock = _join_clock(rows, max_delay)
    ours = rows[rows[REQUEST_ID].isin(window[REQUEST_ID])] if len(rows) else rows
    status = ours["status"] if len(ours) else pd.Series(dtype=object)
    expired = int((status == EXPIRED).sum())
    with_label = ours[ours[label].notna()] if len(ours) else ours
    unseen = window[~window[REQUEST_ID].isin(ours[REQUEST_ID])]
    pending = len(unseen) if clock is None else int((unseen[EVENT_TIME] > clock - max_delay).sum())
    labels = with_label[label].astype(int).to_numpy() if len(with_label) else None
    roc_auc = None
    if labels is not None and len(labels) >= min_labels and len(set(labels)) == 2:
        roc_auc = rank_roc_auc(labels, with_label["probability"].to_numpy(np.float64))
    return WindowPerformance(
        predictions=len(window),
        labelled=len(with_label),
        without_label=len(ours) - len(with_label) - expired,
        expired=expired,
        pending=pending,
        missing=len(unseen) - pending,
        roc_auc=roc_auc,
        positive_rate=None if labels is None else float(labels.mean()),
    )


def _join_clock(rows: pd.DataFrame, max_delay: timedelta) -> pd.Timestamp | None:
    """The latest outcome time the join has written (an expiry proves the clock had reached
    the prediction's time plus the delay)."""
    if not len(rows) or "outcome_timestamp" not in rows.columns:
        return None
    candidates = [rows["outcome_timestamp"].max()]
    expired = rows[rows["status"] == EXPIRED]
    if len(expired):
        candidates.append(expired[EVENT_TIME].max() + max_delay)
    known = [moment for moment in candidates if pd.notna(moment)]
    return max(known) if known else None
