"""OIP v2 over gRPC (``inference.GRPCInferenceService``), inside the worker, on its own port.

gRPC's threaded server accepts calls in its own threads; each ``ModelInfer`` decodes its tensors
in a pool thread and hands the rows to the worker's event loop, where they join the same
micro-batches as HTTP requests. ``grpc.aio`` on that loop was measured and rejected: it accepts
one call per event-loop turn, so calls were served one per batch (docs/decisions.md, §6).

With several workers each binds the port with ``SO_REUSEPORT``. Outputs are always sent as
``raw_output_contents``, which is what ``tritonclient.grpc`` reads; inputs may be typed or raw.
Messages larger than ``max_body_bytes`` are refused by gRPC itself (``RESOURCE_EXHAUSTED``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import grpc

from loopline.errors import RequestError, Unavailable
from loopline.serving import oip
from loopline.serving.core import Prediction
from loopline.serving.endpoints import Endpoints
from loopline.serving.runtime import Runtime
from loopline.serving.schema import Row

T = TypeVar("T")
SERVICE = "inference.GRPCInferenceService"
METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)
THREADS = 32
"""Calls handled at once per worker; more wait in gRPC's queue."""
CALL_TIMEOUT_S = 60.0
"""How long a call waits for its batch when the client set no deadline."""


def _load_messages() -> Any:
    """kserve's generated OIP v2 messages, loaded from their file and registered under their
    module name. ``import kserve.protocol.grpc...`` would first run ``kserve/__init__`` (its
    model server, a Kubernetes client): 0.9 s of start-up for four dozen lines of descriptors.
    A later ``import kserve`` in the same process finds and reuses the module."""
    name = "kserve.protocol.grpc.grpc_predict_v2_pb2"
    if name not in sys.modules:
        package = importlib.util.find_spec("kserve")  # finding a package does not import it
        if package is None or package.origin is None:
            raise ModuleNotFoundError("kserve (it ships the OIP v2 gRPC messages) is not installed")
        path = Path(package.origin).parent / "protocol" / "grpc" / "grpc_predict_v2_pb2.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


pb = _load_messages()
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def start_grpc_server(
    runtime: Runtime, endpoints: Endpoints, loop: asyncio.AbstractEventLoop
) -> grpc.Server:
    """Listen on ``grpc_port``; inference runs on ``loop`` (the worker's event loop)."""
    settings = runtime.settings
    server = grpc.server(
        ThreadPoolExecutor(THREADS, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ],
    )
    servicer = InferenceServicer(runtime, endpoints, loop)
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method),
            request_deserializer=getattr(pb, f"{method}Request").FromString,
            response_serializer=getattr(pb, f"{method}Response").SerializeToString,
        )
        for method in METHODS
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    server.start()
    return server


class InferenceServicer:
    """Runs in gRPC's threads: only ``_predict`` touches the runtime's state, on the loop."""

    def __init__(
        self, runtime: Runtime, endpoints: Endpoints, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.runtime = runtime
        self._endpoints = endpoints
        self._loop = loop
        names = ("grpc_infer", "grpc_metadata", "grpc_health")
        runtime.metrics.expose_endpoints(runtime.served.version, names)

    def ServerLive(self, request: Any, context: Any) -> Any:
        return self._call("grpc_health", context, False, lambda: pb.ServerLiveResponse(live=True))

    def ServerReady(self, request: Any, context: Any) -> Any:
        ready = self.runtime.ready
        return self._call(
            "grpc_health", context, False, lambda: pb.ServerReadyResponse(ready=ready)
        )

    def ModelReady(self, request: Any, context: Any) -> Any:
        def answer() -> Any:
            self.runtime.check_model(request.name, request.version)
            return pb.ModelReadyResponse(ready=self.runtime.ready)

        return self._call("grpc_health", context, False, answer)

    def ServerMetadata(self, request: Any, context: Any) -> Any:
        metadata = self._endpoints.server_metadata
        return self._call(
            "grpc_metadata", context, True, lambda: pb.ServerMetadataResponse(**metadata)
        )

    def ModelMetadata(self, request: Any, context: Any) -> Any:
        def answer() -> Any:
            self.runtime.check_model(request.name, request.version)
            meta = self._endpoints.model_metadata
            tensor = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=meta["name"],
                versions=meta["versions"],
                platform=meta["platform"],
                inputs=[tensor(**t) for t in meta["inputs"]],
                outputs=[tensor(**t) for t in meta["outputs"]],
            )

        return self._call("grpc_metadata", context, True, answer)

    def ModelInfer(self, request: Any, context: Any) -> Any:
        def answer() -> Any:
            runtime = self.runtime
            runtime.check_model(request.model_name, request.model_version)
            raw = list(request.raw_input_contents)
            tensors = [
                oip.decode(
                    i.name,
                    i.datatype,
                    list(i.shape),
                    list(getattr(i.contents, CONTENTS.get(i.datatype, "bytes_contents"))),
                    raw[n] if raw else None,
                )
                for n, i in enumerate(request.inputs)
            ]
            rows = oip.to_rows(runtime.schema, tensors)
            handover = asyncio.run_coroutine_threadsafe(self._predict(rows), self._loop)
            remaining = context.time_remaining()  # None, or huge, without a client deadline
            try:
                predictions = handover.result(min(remaining or CALL_TIMEOUT_S, CALL_TIMEOUT_S))
            except TimeoutError:
                handover.cancel()  # a cancelled request is dropped from its batch: not logged
                raise Unavailable("no answer within the call's deadline") from None
            requested = [output.name for output in request.outputs]
            outputs = oip.select(oip.outputs(runtime.views, predictions), requested)
            return pb.ModelInferResponse(
                model_name=runtime.served.name,
                model_version=runtime.served.version,
                id=request.id,
                outputs=[
                    pb.ModelInferResponse.InferOutputTensor(
                        name=t.name, datatype=t.datatype, shape=t.shape
                    )
                    for t in outputs
                ],
                raw_output_contents=[oip.raw(t) for t in outputs],
            )

        return self._call("grpc_infer", context, True, answer)

    async def _predict(self, rows: list[Row]) -> list[Prediction]:
        return await self.runtime.serve(rows, "grpc_infer")

    def _call(self, endpoint: str, context: Any, protected: bool, answer: Callable[[], T]) -> T:
        started = time.perf_counter()
        code = "OK"
        try:
            if protected:
                self._authorize(context)
            return answer()
        except RequestError as error:
            code = error.grpc_code
            context.abort(getattr(grpc.StatusCode, code), str(error))  # raises
            raise
        except Exception:
            code = "INTERNAL"
            raise
        finally:
            seconds = time.perf_counter() - started
            self.runtime.metrics.observe_request(
                endpoint, self.runtime.served.version, code, seconds
            )

    def _authorize(self, context: Any) -> None:
        metadata = dict(context.invocation_metadata() or ())
        self._endpoints.token.check(str(metadata.get("authorization", "")).encode())
