"""The standard gRPC services on the serving port: health checking and server reflection.

``grpc.health.v1.Health`` (grpcio-health-checking's servicer) answers for the whole server
(``""``) and for ``inference.GRPCInferenceService``: ``SERVING`` exactly when ``Runtime.ready``
is true, so ``NOT_SERVING`` while the worker warms up and from the moment the SIGTERM drain
begins. ``Check`` reads readiness when it is called; ``Watch`` streams are told of each change
(``Readiness.refresh``, run when the warm-up succeeds and when the drain begins). Kubernetes'
``grpc:`` probes and ``grpc_health_probe`` use ``Check``; an unknown service is ``NOT_FOUND``.

Server reflection (``grpc.reflection.v1alpha``, what ``grpcurl`` and ``grpc_cli`` use) lists the
three services and describes them from a descriptor pool of their own: kserve's OIP v2 file
declares two methods this server does not serve (``RepositoryModelLoad``/``Unload``), which are
left out, so reflection shows what is served, the OIP spec's six methods.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from loopline.serving.runtime import Runtime

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness(health.HealthServicer):
    """``grpc.health.v1`` whose status is the runtime's readiness."""

    def __init__(self, runtime: Runtime, services: Sequence[str]) -> None:
        super().__init__(experimental_non_blocking=True)
        self._runtime = runtime
        self._services = (health.OVERALL_HEALTH, *services)
        self._changing = threading.Lock()
        self._status: int | None = None
        self.refresh()

    def refresh(self) -> None:
        """Set every service's status from ``Runtime.ready``; watchers hear of changes only.
        Safe from any thread but a signal handler (the drain hands it to the event loop)."""
        status = SERVING if self._runtime.ready else NOT_SERVING
        with self._changing:
            if status == self._status:
                return
            self._status = status
            for service in self._services:
                self.set(service, status)

    def Check(self, request: Any, context: Any) -> Any:
        self.refresh()
        return super().Check(request, context)


def add_standard_services(
    server: grpc.Server, runtime: Runtime, messages: Any, service: str, methods: Sequence[str]
) -> Readiness:
    """Health and reflection on ``server``, next to ``service`` (``methods`` of it served,
    declared in ``messages``' file)."""
    readiness = Readiness(runtime, [service])
    health_pb2_grpc.add_HealthServicer_to_server(readiness, server)
    names = (service, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=_pool(messages, service, methods))
    return readiness


def _pool(messages: Any, service: str, methods: Sequence[str]) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in (health_pb2, reflection_pb2, messages):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        for declared in proto.service:
            if f"{proto.package}.{declared.name}" == service:
                kept = [m for m in declared.method if m.name in methods]
                del declared.method[:]
                declared.method.extend(kept)
        pool.Add(proto)
    return pool
