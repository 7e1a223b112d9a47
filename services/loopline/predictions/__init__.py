"""The prediction log: every answered prediction, with the features as served.

Serving writes it (``PredictionLog``, optionally shipping to a Redis Stream with
``RedisShipper``); the outcome join, the monitor and the skew check read it (``read_segments``,
``PredictionStream``). Both sides use the one record type, ``PredictionRecord``.

record      the typed record, its encoder and decoder
writer      write-ahead segment files, fsync thread, the bounded queue
redis_sink  segments shipped to a Redis Stream, then deleted
readers     both sinks read back in time order, deduplicated by request id
columns     the file sink's segments read straight into the monitor's columns (pyarrow)
"""

from loopline.predictions.readers import Batch, PredictionStream, read_segments
from loopline.predictions.record import (
    PredictionRecord,
    RecordError,
    ShadowScore,
    decode,
    encode,
)
from loopline.predictions.redis_sink import RedisShipper
from loopline.predictions.writer import LogCounters, LogUnavailable, PredictionLog, Sink

__all__ = [
    "Batch",
    "LogCounters",
    "LogUnavailable",
    "PredictionLog",
    "PredictionRecord",
    "PredictionStream",
    "RecordError",
    "RedisShipper",
    "ShadowScore",
    "Sink",
    "decode",
    "encode",
    "read_segments",
]
