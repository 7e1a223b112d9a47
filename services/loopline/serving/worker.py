"""One worker process's servers: the HTTP app and the gRPC server, over one ``Runtime``.

This module owns the transports, so the data plane (``runtime``) knows none of them. The
BentoML service builds a ``Worker`` in its ``__init__``; BentoML's uvicorn serves ``http`` (and
drains it on SIGTERM before the shutdown hook); ``start`` and ``stop`` (the service's start-up
and shutdown hooks, on the worker's event loop) run the gRPC server and the runtime around it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loopline.serving.endpoints import Endpoints
from loopline.serving.grpc_server import start_grpc_server
from loopline.serving.http import PredictorApp
from loopline.serving.runtime import Runtime
from loopline.settings import Settings


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.endpoints = Endpoints.of(runtime)
        self.http = PredictorApp(runtime, self.endpoints)
        self._grpc: Any = None

    @classmethod
    def load(cls, settings: Settings) -> Worker:
        return cls(Runtime.load(settings))

    async def start(self) -> None:
        await self.runtime.start()
        self._grpc = start_grpc_server(self.runtime, self.endpoints, asyncio.get_running_loop())

    async def stop(self) -> None:
        """Drain: gRPC stops taking calls and finishes its own (the loop keeps serving them
        meanwhile; HTTP has drained already), then the runtime flushes the batcher and log."""
        if self._grpc is not None:
            stopped = self._grpc.stop(self.runtime.settings.shutdown_grace_s)
            await asyncio.to_thread(stopped.wait)
        await self.runtime.stop()
