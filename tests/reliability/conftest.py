"""The reliability tier: bad input, overload, slow clients, shutdown and tampering, each bounded
in time and on 127.0.0.1. It reuses the serving tier's set-up: a trained model, its features
materialized into a real redis-server, and ``loopline serve`` processes started on them."""

from tests.integration.serving.conftest import serving, serving_redis

__all__ = ["serving", "serving_redis"]
