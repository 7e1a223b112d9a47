"""The HTTP worker process: BentoML's worker with the predictor's uvicorn server.

``loopline serve`` has BentoML's arbiter start ``python -m loopline.serving.uvicorn_worker``
instead of BentoML's worker script (``_bentoml_impl.worker.service``); it runs that script's own
``main`` (its arguments, the service, the shared socket), with ``uvicorn.Server`` replaced by
``DrainingServer``, which adds what uvicorn lacks:

- **SIGTERM drains.** The ``on_drain`` hooks run at once, in the signal handler (readiness
  turns 503 on every probe), and requests are still served for ``shutdown_drain_s`` (every
  answer says ``Connection: close``, so clients reconnect, to another replica once the endpoint
  is gone). Then the listening socket is shut: connections already in its queue are taken over
  first, new ones are refused at connect (the arbiter holds the socket too: closing this
  process's copy alone would leave them waiting in a queue nobody accepts from). After a short
  settle for requests already on the wire, uvicorn's graceful shutdown runs: idle connections
  are closed, the others after their answer, then the lifespan shutdown (``Worker.stop``: gRPC,
  the batcher, the log). A second SIGTERM, or SIGINT, ends the drain at once. A worker with
  nothing to drain (never ready) stops at once.
- **Its own HTTP protocol** (``http_protocol``): a header timeout, shedding at the protocol
  (the refuser the worker registers with ``shed_with``), JSON for malformed requests.
- ``keep_alive_timeout_s`` for uvicorn's ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from loopline.serving.http_protocol import PredictorProtocol, Refuser
from loopline.settings import Settings

logger = logging.getLogger(__name__)
SETTLE_S = 0.1
"""After the listener is shut: time for requests already sent to be read before idle
connections are closed."""

current: DrainingServer | None = None
"""This process's server, for the worker to register its drain hooks with."""


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        global current
        settings = Settings()
        PredictorProtocol.header_timeout_s = settings.header_timeout_s
        config.http = PredictorProtocol
        config.timeout_keep_alive = settings.keep_alive_timeout_s
        super().__init__(config)
        self.drain_s = settings.shutdown_drain_s
        self._begin: list[Callable[[], bool]] = []
        self._listeners: list[socket.socket] = []
        self._taken: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = self._ended = False
        current = self

    def on_drain(self, begin: Callable[[], bool]) -> None:
        """Call from the event loop: ``begin`` runs in the SIGTERM handler (it must only set
        flags) and says whether there is anything to drain."""
        self._loop = asyncio.get_running_loop()
        self._begin.append(begin)

    def shed_with(self, refuser: Refuser) -> None:
        """Requests ``refuser`` refuses are answered by the protocol (``shedding``)."""
        PredictorProtocol.refuser = refuser

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._listeners = list(sockets or [])
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if loop is None or self._ended:  # not serving yet, or shutting down already
            super().handle_exit(sig, frame)
            return
        delay = 0.0
        if (
            not self._draining
            and sig == signal.SIGTERM
            and any([begin() for begin in self._begin])  # every hook runs
        ):
            delay = self.drain_s
        self._draining = True
        loop.call_soon_threadsafe(self._schedule_end, delay, sig)

    def _schedule_end(self, delay: float, sig: int) -> None:
        if delay:
            logger.info("SIGTERM: not ready; serving %g s more, then stopping", delay)
        assert self._loop is not None
        self._loop.call_later(delay, self._end_drain, sig)

    def _end_drain(self, sig: int) -> None:
        if self._ended:
            return
        self._ended = True
        self._stop_listening()
        assert self._loop is not None
        self._loop.call_later(SETTLE_S, super().handle_exit, sig, None)

    def _stop_listening(self) -> None:
        """Take over what waits in the listening queue, then refuse new connections."""
        assert self._loop is not None
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                while True:
                    connection, _ = listener.accept()
                    connection.setblocking(False)
                    task = self._loop.create_task(
                        self._loop.connect_accepted_socket(self._protocol, connection)
                    )
                    self._taken.add(task)
                    task.add_done_callback(self._taken.discard)
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RD)
        for server in self.servers:
            server.close()

    def _protocol(self) -> asyncio.Protocol:
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol


def main() -> None:
    from _bentoml_impl.worker import service

    # Run as ``python -m``, this file is ``__main__``: the server must be the class of the
    # module ``worker`` imports, whose ``current`` it reads.
    from loopline.serving import uvicorn_worker

    uvicorn.Server = uvicorn_worker.DrainingServer  # type: ignore[misc]
    service.main()


if __name__ == "__main__":
    main()
