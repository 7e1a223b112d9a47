"""One worker process's servers: the HTTP app and the gRPC server, over one ``Runtime``.

This module owns the transports, so the data plane (``runtime``) knows none of them. The
BentoML service builds a ``Worker`` in its ``__init__``; BentoML's uvicorn serves ``http``;
``start`` and ``stop`` (the service's start-up and shutdown hooks, on the worker's event loop)
run the gRPC server and the runtime around it.

SIGTERM (``uvicorn_worker.DrainingServer``): readiness turns false at once (``Runtime.drain``:
HTTP ``/v2/health/ready``, BentoML's ``/readyz``, gRPC ``ServerReady``), both transports keep
serving for ``shutdown_drain_s``, then HTTP stops accepting; once it has finished its requests
``stop`` stops gRPC (which finishes its own calls) and drains the runtime.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loopline.serving import uvicorn_worker
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
        self.http.events.start()
        self._grpc = start_grpc_server(self.runtime, self.endpoints, asyncio.get_running_loop())
        if uvicorn_worker.current is not None:  # served by ``loopline serve``
            uvicorn_worker.current.on_drain(self._begin_drain)

    def _begin_drain(self) -> bool:
        """In the SIGTERM handler: readiness false; something to drain if it was ready."""
        serving = self.runtime.ready
        self.runtime.drain()
        return serving

    async def stop(self) -> None:
        """Drain: gRPC stops taking calls and finishes its own (the loop keeps serving them
        meanwhile; HTTP has drained already), then the runtime flushes the batcher and log."""
        if self._grpc is not None:
            stopped = self._grpc.stop(self.runtime.settings.shutdown_grace_s)
            await asyncio.to_thread(stopped.wait)
        await self.runtime.stop()
        await asyncio.to_thread(self.http.events.stop)
