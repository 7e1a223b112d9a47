"""Which online store the feature repo serves from, read from ``feature_store.yaml`` without
Feast, and the Redis it needs: checked when a server starts, before anything is loaded."""

from __future__ import annotations

import yaml

from loopline.errors import SettingsError
from loopline.settings import Settings


def configured_online_store(settings: Settings) -> str:
    """The online store type serving will read, from ``feature_store.yaml`` without Feast:
    ``redis`` whenever ``LOOPLINE_REDIS_URL`` is set (``features.store`` swaps it in)."""
    if settings.redis_url is not None:
        return "redis"
    path = settings.feature_repo / "feature_store.yaml"
    try:
        online = yaml.safe_load(path.read_text()).get("online_store", "sqlite")
    except (OSError, AttributeError, yaml.YAMLError) as error:
        raise SettingsError(f"cannot read {path}: {error}") from None
    return str(online.get("type", "sqlite") if isinstance(online, dict) else online)


def redis_url_for(store: str, settings: Settings) -> str | None:
    """The Redis an online store of type ``store`` is at, None for SQLite; ``SettingsError``
    when it needs one and none is configured (``feature_store.yaml`` names Redis, and
    ``LOOPLINE_REDIS_URL`` is unset)."""
    if store != "redis":
        return None
    if settings.redis_url is None:
        raise SettingsError(
            "the feature repo's online store is Redis (feature_store.yaml) but "
            "LOOPLINE_REDIS_URL is not set"
        )
    return settings.redis_url
