"""Typed settings, read from ``LOOPLINE_*`` environment variables.

Settings are built once at start-up (``load_settings()`` in the CLI's callback, ``Settings()``
in a service's ``__init__``), never at import time, so tests and jobs can build their own. They
are validated together as they are built: a combination that cannot work (the Redis log sink
with no Redis to ship to, a Redis URL that is not one) is refused before any worker starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loopline.errors import SettingsError
from loopline.settings_live import LiveSettings
from loopline.settings_loop import LoopSettings

ENV_PREFIX = "LOOPLINE_"


class Settings(BaseSettings, LiveSettings, LoopSettings):
    """Where Loopline keeps its state and which backends it talks to."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Path(".loopline")
    """Local state: the model registry (a BentoML model store) and job outputs."""

    feature_repo: Path = Path("feature_repo")
    """The Feast feature repository (``feature_store.yaml`` and the definitions)."""

    redis_url: str | None = None
    """``redis://host:port/db``. When set, Redis is the online store; otherwise SQLite."""

    seed: int = 7
    """Seed for every random choice in training and sampling, so runs are repeatable."""

    code_commit: str | None = None
    """The commit recorded in lineage; set by the image build, else read from git."""

    torch_threads: int = Field(default=2, ge=1)
    """Intra-op threads for PyTorch; the reference machine has 2 cores."""

    # Serving (`loopline serve`). Defaults are the embedded setup: one worker, SQLite features,
    # prediction log in segment files under ``home``.

    model_name: str = "flight-delay"
    """The registered model to serve (its spec travels in the artifact's lineage)."""

    model_ref: str = "champion"
    """Which version of ``model_name``: ``vN``, ``N``, ``latest``, ``champion``, ``challenger``."""

    model_path: Path | None = None
    """An exported version directory (KServe mounts one at ``/mnt/models``); overrides the
    registry when set."""

    model_sha256: str | None = Field(default=None, pattern=r"^([0-9a-fA-F]{64})?$")
    """The artifact sha256 the registry recorded at registration (``loopline models list
    --json``; the chart's ``models[].artifactSha256``). When set, the server refuses to start
    unless the artifact it would serve hashes to it, recomputed from the files. Unset or empty:
    the artifact is checked against the registry's own record only."""

    host: str = "0.0.0.0"
    """Interface the HTTP and gRPC servers listen on."""

    http_port: int = Field(default=3000, ge=1, le=65535)
    """Native JSON API, OIP v2 REST, health and ``/metrics``."""

    grpc_port: int = Field(default=8081, ge=1, le=65535)
    """OIP v2 gRPC (``inference.GRPCInferenceService``)."""

    workers: int = Field(default=1, ge=1)
    """Worker processes; each serves HTTP (shared socket) and gRPC (``SO_REUSEPORT``)."""

    serve_torch_threads: int = Field(default=1, ge=1)
    """PyTorch threads per worker, used at start-up only (loading the model and checking the
    numpy forward that serves it against the PyTorch module)."""

    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    """Request bodies (and gRPC messages) above this are refused with 413 before parsing."""

    max_request_rows: int = Field(default=1000, ge=1)
    """Rows one request may carry, on every protocol (``/predict_batch`` items, OIP tensor
    elements over REST and gRPC); more is refused with 400 before the rows are decoded."""

    max_string_chars: int = Field(default=256, ge=32)
    """Longest string value accepted (string fields, the request id, ``event_timestamp``, an
    OIP ``id``); longer is refused with 400, so it is neither served nor logged."""

    max_concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight per server (split across workers) above which 429 is returned;
    None = unlimited."""

    auth_token: str | None = None
    """Bearer token required on inference and metadata routes; None = no authentication.
    Health and metrics stay open."""

    batch_max_size: int = Field(default=64, ge=1)
    """Most rows one feature lookup and model call serve; requests are never split."""

    batch_wait_ms: float = Field(default=0.0, ge=0)
    """How long a batch waits for more rows. 0 serves what arrived in the same event-loop turn:
    no added latency when idle, and batches grow under load by themselves."""

    feature_timeout_ms: float = Field(default=100.0, gt=0)
    """Online store read timeout; on timeout or error the batch is served with defaults
    and its views flagged ``fallback``."""

    prediction_log_dir: Path | None = None
    """Where prediction-log segments are written; default ``<home>/prediction-log``."""

    prediction_log_sink: Literal["file", "redis"] = "file"
    """``file``: the segment files are the log. ``redis``: segments are a local
    write-ahead spool shipped to a Redis Stream, then deleted."""

    prediction_log_redis_url: str | None = None
    """Redis holding the prediction stream; default ``redis_url``."""

    prediction_log_stream: str = "loopline:predictions"
    """Stream key the ``redis`` sink appends to (one field, ``record``: the log line)."""

    prediction_log_fsync_ms: float = Field(default=200.0, ge=0)
    """Segments are fsynced this often; 0 fsyncs every batch before it is answered."""

    prediction_log_segment_bytes: int = Field(default=64 << 20, ge=1024)
    """A segment is closed and a new one started past this size."""

    prediction_log_max_pending: int = Field(default=100_000, ge=1)
    """Records written but not yet durable at the sink (fsynced, or acknowledged by Redis)
    above which new requests are refused with 503."""

    shutdown_grace_s: float = Field(default=20.0, ge=0)
    """On SIGTERM: time for in-flight requests to finish and the log to drain."""

    # Overload, slow clients and shutdown (docs/serving.md, "Overload and shutdown"): the
    # defaults come from the capacity measured by bench/overload.py.

    shutdown_drain_s: float = Field(default=5.0, ge=0)
    """On SIGTERM: readiness turns 503 at once and requests are still served this long, so load
    balancers can remove the endpoint; then HTTP and gRPC stop accepting and drain."""

    max_queued_rows: int = Field(default=128, ge=1)
    """Rows admitted and not yet answered, per worker, above which requests are refused at once
    with 429 and ``Retry-After`` (a request larger than this is admitted only alone)."""

    queue_deadline_ms: float = Field(default=100.0, gt=0)
    """Requests are refused at once with 429 while the oldest admitted request has waited
    longer than this (plus twice ``batch_wait_ms``): the queue is not moving."""

    saturated_lag_ms: float = Field(default=5.0, gt=0)
    """Event-loop lag (smoothed) above which the worker counts as saturated: a connection it
    has just refused then goes unread for about twice the lag (at most 100 ms), so its next
    request waits in the kernel instead of costing another refusal (back-pressure)."""

    body_timeout_s: float = Field(default=10.0, gt=0)
    """A request body not fully received this long after its headers gets 408 and its
    connection is closed; admission only counts a request once its body is in."""

    header_timeout_s: float = Field(default=10.0, gt=0)
    """A connection whose request headers are not complete this long after it opened (or after
    the request began) is closed."""

    keep_alive_timeout_s: int = Field(default=5, ge=1)
    """An idle kept-alive HTTP connection is closed after this long."""

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for name in ("redis_url", "prediction_log_redis_url", "events_redis_url"):
            url = getattr(self, name)
            if url is not None and urlparse(url).scheme not in ("redis", "rediss"):
                raise ValueError(f"{_env(name)} must start with redis:// or rediss://, not {url!r}")
        if self.pushgateway_url and urlparse(self.pushgateway_url).scheme not in ("http", "https"):
            raise ValueError(
                f"{_env('pushgateway_url')} must start with http:// or https://, "
                f"not {self.pushgateway_url!r}"
            )
        if self.prediction_log_sink == "redis" and self.prediction_log_url is None:
            raise ValueError(
                f"{_env('prediction_log_sink')}=redis needs {_env('prediction_log_redis_url')} "
                f"or {_env('redis_url')}"
            )
        if self.ingest_shard is not None and self.ingest_shard >= self.ingest_shards:
            raise ValueError(
                f"{_env('ingest_shard')}={self.ingest_shard} is not below "
                f"{_env('ingest_shards')}={self.ingest_shards}"
            )
        if self.ingest_dedup_horizon_s < self.ingest_allowed_lateness_s:
            raise ValueError(
                f"{_env('ingest_dedup_horizon_s')} must be at least "
                f"{_env('ingest_allowed_lateness_s')}"
            )
        return self

    @property
    def events_url(self) -> str | None:
        """The Redis of the event streams; None: in memory (embedded)."""
        return self.events_redis_url or self.redis_url

    @property
    def ingest_in_serve(self) -> bool:
        """Whether ``loopline serve`` runs the consumers (``ingest_embedded``, by default when
        the stream is in memory)."""
        embedded = self.events_url is None if self.ingest_embedded is None else self.ingest_embedded
        return embedded and self.workers == 1

    @property
    def prediction_log_url(self) -> str | None:
        """The Redis the prediction log ships to; None with the ``file`` sink."""
        if self.prediction_log_sink == "file":
            return None
        return self.prediction_log_redis_url or self.redis_url

    @property
    def labelled_dir(self) -> Path:
        return self.outcome_dataset_dir or self.home / "labelled"

    @property
    def data_dir(self) -> Path:
        """Prepared parquet sources live inside the feature repo, where Feast resolves them."""
        return self.feature_repo / "data"

    @property
    def reports_dir(self) -> Path:
        """Monitor reports and the Evidently workspace (``LOOPLINE_REPORTS_DIR``)."""
        return self.monitor_reports_dir or self.home / "reports"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    @property
    def log_dir(self) -> Path:
        return self.prediction_log_dir or self.home / "prediction-log"

    def feast_redis_connection_string(self) -> str | None:
        """Translate ``redis_url`` into Feast's ``host:port,db=N,password=...`` form."""
        if self.redis_url is None:
            return None
        url = urlparse(self.redis_url)
        parts = [f"{url.hostname or 'localhost'}:{url.port or 6379}"]
        database = url.path.lstrip("/")
        if database:
            parts.append(f"db={int(database)}")
        if url.password:
            parts.append(f"password={url.password}")
        if url.scheme == "rediss":
            parts.append("ssl=true")
        return ",".join(parts)


def load_settings() -> Settings:
    """Settings from the environment; ``SettingsError`` names the first variable at fault."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        where = f"{_env(str(first['loc'][0]))}: " if first["loc"] else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"invalid settings: {where}{message}") from None


def _env(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"
