"""The BentoML service: ``bentoml serve loopline.serving.service:Predictor``, or ``loopline serve``.

BentoML owns the process model (its arbiter, the workers, the shared socket, graceful
shutdown), configuration and packaging (``bentofile.yaml``). The requests on the hot path do not
go through its HTTP stack (its middleware cost and a timer leaked per request: the measurements
are in docs/decisions.md, §1):

- ``PredictorService`` (``service_class``) wraps the ASGI app BentoML builds in ``FastPath``,
  which hands the predictor's routes (``PredictorApp.handles``) to the plain ASGI app in
  ``http`` and everything else (lifespan, ``/livez``, ``/readyz``, docs) to BentoML, whose
  ``/readyz`` asks ``__is_ready__``: the same flag as ``/v2/health/ready``;
- BentoML's own metrics, access log and tracing are off: the predictor exports its own metrics,
  and an access log line per request would cost more than the prediction;
- ``bentoml build`` packages the version ``model`` names as a BentoML model, and the schema lists
  the inference routes ``FastPath`` serves (``routes``); a served Bento's deployment hook
  (``bento.prepare``) points the workers at that model and checks it can serve (docs/delivery.md).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import bentoml

from loopline.registry.bento import RegistryModel
from loopline.settings import Settings, load_settings

Scope = dict[str, Any]


class FastPath:
    """Outermost ASGI layer: the predictor's routes skip BentoML's middleware and router."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._predictor: Any = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self._predictor is None:  # the service instance exists once lifespan has run
                self._predictor = bentoml.get_current_service().worker.http
            if self._predictor.handles(scope["path"]):
                await self._predictor(scope, receive, send)
                return
        await self.app(scope, receive, send)


class PredictorService(bentoml.Service[Any]):
    def to_asgi(self, is_main: bool = True) -> Any:
        return FastPath(super().to_asgi(is_main))

    def schema(self) -> dict[str, Any]:
        """BentoML's schema, with the inference routes ``FastPath`` serves (``routes``)."""
        from loopline.serving.bento import schema_routes

        schema = super().schema()
        return {**schema, "routes": [*schema["routes"], *schema_routes(load_settings())]}


@bentoml.service(
    name="loopline-predictor",
    service_class=PredictorService,
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    tracing={"sample_rate": 0.0},
)
class Predictor:
    """Serves one model version: OIP v2 (REST and gRPC) and native JSON, with online features."""

    model = RegistryModel()
    """The version ``bentoml build`` packages (settings: the champion unless
    ``LOOPLINE_MODEL_REF`` names another); a served Bento serves it."""

    @bentoml.on_deployment
    def prepare() -> None:
        from loopline.serving.bento import prepare

        service: bentoml.Service[Any] = Predictor  # the decorator made the class a Service
        prepare(service.bento)

    def __init__(self) -> None:
        # PyTorch and the predictor's modules, imported here, create objects that set off full
        # collections which free nothing (0.15-0.2 s of a 3 s start-up): collect none while
        # importing, then move what the imports built out of the collector's sight.
        gc.disable()
        from loopline.serving.worker import Worker

        gc.freeze()
        gc.enable()
        # BentoML's server logging sends the root logger to its handler at WARNING.
        logging.getLogger("loopline").setLevel(logging.INFO)
        self.worker = Worker.load(Settings())

    async def __is_ready__(self) -> bool:
        return self.worker.runtime.ready

    @bentoml.on_startup
    async def start(self) -> None:
        await self.worker.start()

    @bentoml.on_shutdown
    async def stop(self) -> None:
        await self.worker.stop()
