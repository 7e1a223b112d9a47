"""The live traffic's settings (events, ingest, the outcome join, replay, skew), a group of
``Settings`` (``loopline.settings``), which inherits them and reads them from ``LOOPLINE_*``
like the rest; the checks that tie them to other fields are ``Settings``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

IngestStage = Literal["all", "repartition", "shard"]


class LiveSettings(BaseModel):
    """Fields of ``Settings``; never built on their own."""

    # The outcome join and live performance (run by the ingest process), the replay and the
    # skew check (docs/outcomes.md).

    outcome_dataset_dir: Path | None = None
    """Where the labelled prediction dataset (parquet by day) is written; default
    ``<home>/labelled``."""

    outcome_max_delay_hours: float = Field(default=24.0, gt=0)
    """World time a prediction waits for its outcome (and an outcome for its predictions);
    a prediction still waiting then is written and counted as ``expired``."""

    outcome_windows_hours: list[float] = Field(default=[24.0, 168.0], min_length=1)
    """Sliding windows of outcome time the live metrics are computed over (JSON list)."""

    outcome_flush_rows: int = Field(default=1000, ge=1)
    """Joined predictions buffered before they are written to the dataset..."""

    outcome_flush_s: float = Field(default=5.0, gt=0)
    """...or this long after the first of them was buffered..."""

    outcome_idle_s: float = Field(default=0.5, gt=0)
    """...or once no outcome has come for this long (the last rows of a burst)."""

    outcome_group: str = "loopline-outcomes"
    """Consumer group the join reads the prediction stream with (``redis`` log sink)."""

    replay_url: str = "http://127.0.0.1:3000"
    """The server ``loopline replay`` sends requests and events to."""

    replay_concurrency: int = Field(default=8, ge=1)
    """Requests ``loopline replay`` keeps in flight."""

    replay_batch_rows: int = Field(default=250, ge=1)
    """Prediction requests per ``/predict_batch`` call, and events per ``/events`` call."""

    skew_tolerance: float = Field(default=1e-6, ge=0)
    """Largest difference between a served and an offline feature value that is no skew."""

    # Live events and ingest (docs/events.md): ``POST /events`` and direct ``XADD``s land on
    # an event stream that ``loopline ingest`` consumes, one consumer per shard.

    events_redis_url: str | None = None
    """Redis holding the event streams; default ``redis_url``. With neither, the stream is in
    the serving process's memory and ``loopline serve`` (one worker) ingests it itself."""

    events_stream_prefix: str = "loopline:events"
    """Key prefix of the streams: ``<prefix>:in`` (producers), ``<prefix>:shard:<i>``,
    ``<prefix>:dead`` (malformed entries) and the shards' state."""

    events_timeout_ms: float = Field(default=500.0, gt=0)
    """Redis call timeout for event producers and consumers; ``POST /events`` answers 503
    past it."""

    events_max_per_request: int = Field(default=1000, ge=1)
    """Events one ``POST /events`` may carry; more is refused with 400."""

    events_answer_applied: bool = False
    """``POST /events`` answers only once the ingest running in this process (embedded) has
    applied the events; ignored where ingest runs elsewhere. ``loopline replay`` needs it when
    the stream is in the server's memory, to serve a slice's requests after its events
    (``make demo`` sets it for its server)."""

    ingest_shards: int = Field(default=1, ge=1)
    """Shards every aggregate key is hashed into; one ``loopline ingest`` consumer each."""

    ingest_shard: int | None = Field(default=None, ge=0)
    """The shard this ``loopline ingest`` process consumes (the chart sets the pod's ordinal);
    None: every shard, in one process."""

    ingest_stage: IngestStage = "all"
    """Which stages this ``loopline ingest`` process runs: ``all``, or ``repartition`` or
    ``shard`` alone (the chart runs a shard's two stages as two containers: two cores)."""

    ingest_embedded: bool | None = None
    """Whether ``loopline serve`` consumes the stream itself, in its worker (one worker only).
    None: when the stream is in memory (no Redis)."""

    ingest_batch_size: int = Field(default=1000, ge=1)
    """Most entries one ingest step reads and commits."""

    ingest_block_ms: int = Field(default=100, ge=1, le=1000)
    """How long a read waits for new entries when the stream is idle."""

    ingest_allowed_lateness_s: float = Field(default=600.0, ge=0)
    """Departures out of order by up to this (event time) are applied as if in order; a
    departure whose bucket has closed by then is counted late and not aggregated."""

    ingest_dedup_horizon_s: float = Field(default=3 * 3600.0, gt=0)
    """Event ids are remembered this long in event time; an event older than this behind the
    shard's latest is dropped as late."""

    ingest_max_future_s: float = Field(default=86400.0, gt=0)
    """Events stamped further than this after the ingest clock go to the dead-letter stream."""

    ingest_offline_rows: int = Field(default=50_000, ge=1)
    """Rows per offline parquet file (at most)."""

    ingest_offline_interval_s: float = Field(default=60.0, gt=0)
    """An offline file is written at least this often while rows wait."""

    ingest_metrics_port: int = Field(default=9102, ge=0, le=65535)
    """``/metrics`` of the ingest consumer (0: not served)."""
