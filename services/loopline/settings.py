"""Typed settings, read from ``LOOPLINE_*`` environment variables.

Settings are built once at start-up (``Settings()`` in the CLI's callback or a service's
``__init__``), never at import time, so tests and jobs can build their own.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Loopline keeps its state and which backends it talks to."""

    model_config = SettingsConfigDict(env_prefix="LOOPLINE_", extra="ignore")

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

    @property
    def data_dir(self) -> Path:
        """Prepared parquet sources live inside the feature repo, where Feast resolves them."""
        return self.feature_repo / "data"

    @property
    def registry_dir(self) -> Path:
        return self.home / "registry"

    def feast_redis_connection_string(self) -> str | None:
        """Translate ``redis_url`` into Feast's ``host:port,db=N,password=...`` form."""
        if self.redis_url is None:
            return None
        url = urlparse(self.redis_url)
        if url.scheme not in ("redis", "rediss"):
            raise ValueError(
                f"LOOPLINE_REDIS_URL must start with redis:// (got {self.redis_url!r})"
            )
        parts = [f"{url.hostname or 'localhost'}:{url.port or 6379}"]
        database = url.path.lstrip("/")
        if database:
            parts.append(f"db={int(database)}")
        if url.password:
            parts.append(f"password={url.password}")
        if url.scheme == "rediss":
            parts.append("ssl=true")
        return ",".join(parts)
