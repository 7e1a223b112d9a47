"""OIP v2 over gRPC (``inference.GRPCInferenceService``), inside the worker, on its own port.

gRPC's threaded server accepts calls in its own threads; each ``ModelInfer`` decodes its tensors
in a pool thread and hands the rows to the worker's event loop, where they join the same
micro-batches as HTTP requests. ``grpc.aio`` on that loop was measured and rejected: it accepts
one call per event-loop turn, so calls were served one per batch (docs/decisions.md, §6).

With several workers each binds the port with ``SO_REUSEPORT``. Outputs are always sent as
``raw_output_contents``, which is what ``tritonclient.grpc`` reads; inputs may be typed or raw
(one ``raw_input_contents`` per input, none with typed ``contents`` as well). Messages larger
than ``max_body_bytes`` are refused by gRPC itself (``RESOURCE_EXHAUSTED``); one that does not
parse as its message type is answered ``INVALID_ARGUMENT`` (gRPC's own deserialiser would answer
``INTERNAL``), and status details are cut like HTTP error bodies (``errors.bounded``), so an
echoed name never overflows the metadata limit. A refusal the caller should retry
(``RESOURCE_EXHAUSTED`` from admission, ``UNAVAILABLE``) carries a ``retry-after`` trailing
metadata entry, the seconds HTTP's ``Retry-After`` header carries. ``ModelInfer``'s ``id`` names
its predictions as the REST ``id`` does (``schema.columns_to_rows``).

The same server runs the standard health and reflection services (``grpc_standard``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from loopline.errors import BadRequest, RequestError, Unavailable, bounded, brief
from loopline.serving import oip
from loopline.serving.core import Prediction
from loopline.serving.endpoints import Endpoints
from loopline.serving.grpc_standard import Readiness, add_standard_services
from loopline.serving.runtime import Runtime
from loopline.serving.schema import Row, check_request_id

logger = logging.getLogger(__name__)
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
) -> tuple[grpc.Server, Readiness]:
    """Listen on ``grpc_port``; inference runs on ``loop`` (the worker's event loop). The
    health service is returned, to be refreshed when readiness changes."""
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
            request_deserializer=_lenient(getattr(pb, f"{method}Request")),
            response_serializer=getattr(pb, f"{method}Response").SerializeToString,
        )
        for method in METHODS
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    readiness = add_standard_services(server, runtime, pb, SERVICE, METHODS)
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    server.start()
    return server, readiness


class Undecodable:
    """What ``_lenient`` hands a method for bytes that are not its request message."""

    def __init__(self, message: str, error: Exception) -> None:
        self.problem = f"the request is not a valid {message} ({brief(str(error))})"


def _lenient(message: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except (DecodeError, ValueError) as error:
            return Undecodable(message.DESCRIPTOR.name, error)

    return parse


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
        return self._call(
            "grpc_health", context, False, lambda: pb.ServerLiveResponse(live=True), request
        )

    def ServerReady(self, request: Any, context: Any) -> Any:
        ready = self.runtime.ready
        return self._call(
            "grpc_health", context, False, lambda: pb.ServerReadyResponse(ready=ready), request
        )

    def ModelReady(self, request: Any, context: Any) -> Any:
        def answer() -> Any:
            self.runtime.check_model(request.name, request.version)
            return pb.ModelReadyResponse(ready=self.runtime.ready)

        return self._call("grpc_health", context, False, answer, request)

    def ServerMetadata(self, request: Any, context: Any) -> Any:
        metadata = self._endpoints.server_metadata
        return self._call(
            "grpc_metadata", context, True, lambda: pb.ServerMetadataResponse(**metadata), request
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

        return self._call("grpc_metadata", context, True, answer, request)

    def ModelInfer(self, request: Any, context: Any) -> Any:
        def answer() -> Any:
            runtime = self.runtime
            runtime.check_model(request.model_name, request.model_version)
            request_id = check_request_id(request.id or None, "id", runtime.schema.limits)
            requested = [output.name for output in request.outputs]
            oip.check_outputs(requested, runtime.views)
            tensors = _tensors(request, runtime.schema.limits.rows)
            rows = oip.to_rows(runtime.schema, tensors, request_id)
            handover = asyncio.run_coroutine_threadsafe(self._predict(rows), self._loop)
            remaining = context.time_remaining()  # None, or huge, without a client deadline
            try:
                predictions = handover.result(min(remaining or CALL_TIMEOUT_S, CALL_TIMEOUT_S))
            except TimeoutError:
                handover.cancel()  # a cancelled request is dropped from its batch: not logged
                raise Unavailable("no answer within the call's deadline") from None
            outputs = oip.select(oip.outputs(runtime.views, predictions), requested)
            return pb.ModelInferResponse(
                model_name=runtime.served.name,
                model_version=predictions[0].version if predictions else runtime.served.version,
                id=request.id,
                outputs=[
                    pb.ModelInferResponse.InferOutputTensor(
                        name=t.name, datatype=t.datatype, shape=t.shape
                    )
                    for t in outputs
                ],
                raw_output_contents=[oip.raw(t) for t in outputs],
            )

        return self._call("grpc_infer", context, True, answer, request)

    async def _predict(self, rows: list[Row]) -> list[Prediction]:
        return await self.runtime.serve(rows, "grpc_infer")

    def _call(
        self,
        endpoint: str,
        context: Any,
        protected: bool,
        answer: Callable[[], T],
        request: Any,
    ) -> T:
        started = time.perf_counter()
        code = "OK"
        try:
            if protected:
                self._authorize(context)
            if isinstance(request, Undecodable):
                raise BadRequest(request.problem)
            return answer()
        except RequestError as error:
            code = error.grpc_code
            retry_after = dict(error.headers).get(b"retry-after")
            if retry_after is not None:
                context.set_trailing_metadata((("retry-after", retry_after.decode()),))
            context.abort(getattr(grpc.StatusCode, code), bounded(str(error)))  # raises
            raise
        except Exception:
            code = "INTERNAL"
            logger.exception("%s failed", endpoint)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")  # raises
            raise
        finally:
            seconds = time.perf_counter() - started
            self.runtime.metrics.observe_request(
                endpoint, self.runtime.served.version, code, seconds
            )

    def _authorize(self, context: Any) -> None:
        metadata = dict(context.invocation_metadata() or ())
        self._endpoints.token.check(str(metadata.get("authorization", "")).encode())


def _tensors(request: Any, max_rows: int) -> list[oip.Tensor]:
    """A ``ModelInferRequest``'s inputs, typed or raw: ``raw_input_contents`` holds one entry
    per input, in order, or none (then every input has typed ``contents``)."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs")
    tensors = []
    for n, tensor in enumerate(request.inputs):
        if raw and tensor.contents.ByteSize():
            raise BadRequest(f"input {brief(tensor.name)}: both contents and raw_input_contents")
        field = CONTENTS.get(tensor.datatype, "bytes_contents")
        typed = None if raw else list(getattr(tensor.contents, field))
        tensors.append(
            oip.decode(
                tensor.name,
                tensor.datatype,
                list(tensor.shape),
                typed,
                raw[n] if raw else None,
                max_rows,
            )
        )
    return tensors
