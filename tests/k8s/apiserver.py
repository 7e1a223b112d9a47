"""A Kubernetes API server for tests, on 127.0.0.1, that the real ``kubernetes`` client talks to.

It holds objects (rendered by the chart) and answers the few routes ``loopline.cluster`` calls
the way the API server does: GET a CronJob or an InferenceService, POST a Job (``generateName``
resolved, uid and resourceVersion set), PATCH an InferenceService with a JSON merge patch
(RFC 7386; ``resourceVersion`` in the patch must match, else 409). EVERY request is checked:
method and path against the routes, the bearer token, the content type, and the body: a Job
against the Kubernetes batch/v1 schema, a patched InferenceService against the KServe CRD
schema (``kube.validate``, strict). A check that fails answers 400 or 415 and is recorded in
``problems``; ``fail_next`` makes the next request answer a given status with a Status body.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes.client import ApiClient, Configuration

from tests.k8s import kube

TOKEN = "test-token"
_ROUTES = {
    ("GET", r"/apis/batch/v1/namespaces/([^/]+)/cronjobs/([^/]+)"): ("batch", "cronjobs"),
    ("POST", r"/apis/batch/v1/namespaces/([^/]+)/jobs"): ("batch", "jobs"),
    ("GET", r"/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/]+)"): (
        "serving.kserve.io",
        "inferenceservices",
    ),
    ("PATCH", r"/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/]+)"): (
        "serving.kserve.io",
        "inferenceservices",
    ),
}
VERBS = {"GET": "get", "POST": "create", "PATCH": "patch"}


@dataclass(frozen=True)
class Request:
    """One request as RBAC sees it: verb, API group, resource, namespace and name (None for a
    create, which RBAC cannot restrict by name)."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str | None
    body: Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class FakeApiServer:
    """The objects, keyed by (resource, namespace, name), and what was asked of them."""

    objects: dict[tuple[str, str, str], kube.Doc] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    port: int = 0

    def add(self, doc: kube.Doc) -> None:
        meta = doc["metadata"]
        meta.setdefault("uid", secrets.token_hex(16))
        meta.setdefault("resourceVersion", "1")
        resource = {"CronJob": "cronjobs", "InferenceService": "inferenceservices"}[doc["kind"]]
        self.objects[(resource, meta["namespace"], meta["name"])] = doc

    def fail_next(self, status: int) -> None:
        self.failures.append(status)

    def client(self) -> ApiClient:
        configuration = Configuration(host=f"http://127.0.0.1:{self.port}")
        configuration.api_key = {"BearerToken": TOKEN}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        configuration.retries = 0
        return ApiClient(configuration)

    # --- answering ------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        route = next(
            (
                (key, match)
                for key in _ROUTES
                if key[0] == method and (match := re.fullmatch(key[1], path.split("?")[0]))
            ),
            None,
        )
        if route is None:
            return self._problem(404, f"{method} {path}: no such route")
        (_, _), match = route
        group, resource = _ROUTES[route[0]]
        namespace, name = match.group(1), (match.group(2) if match.lastindex == 2 else None)
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._problem(401, f"{method} {path}: no bearer token")
        if headers.get("Accept", "").split(",")[0].strip() != "application/json":
            return self._problem(406, f"{method} {path}: Accept {headers.get('Accept')!r}")
        body = None
        if method in ("POST", "PATCH"):
            expected = "application/json" if method == "POST" else "application/merge-patch+json"
            if headers.get("Content-Type") != expected:
                return self._problem(
                    415, f"{method} {path}: Content-Type {headers.get('Content-Type')!r}"
                )
            body = json.loads(raw)
        elif raw:
            return self._problem(400, f"{method} {path}: a body on a {method}")
        self.requests.append(Request(VERBS[method], group, resource, namespace, name, body))
        if self.failures:
            status = self.failures.pop(0)
            return status, _status(status, f'{resource} "{name or ""}" refused by the test')
        if method == "GET":
            doc = self.objects.get((resource, namespace, name or ""))
            if doc is None:
                return 404, _status(404, f'{resource} "{name}" not found')
            return 200, doc
        if method == "POST":
            return self._create_job(namespace, body)
        return self._patch(resource, namespace, name or "", body)

    def _problem(self, status: int, message: str) -> tuple[int, Any]:
        self.problems.append(message)
        return status, _status(status, message)

    def _create_job(self, namespace: str, job: kube.Doc) -> tuple[int, Any]:
        meta = job.get("metadata", {})
        if meta.get("namespace", namespace) != namespace or "name" in meta:
            return self._problem(400, f"Job metadata {meta!r}: wrong namespace or a fixed name")
        try:
            kube.validate(job)
        except AssertionError as error:
            return self._problem(400, str(error))
        meta.update(
            name=meta["generateName"] + secrets.token_hex(3)[:5],
            namespace=namespace,
            uid=secrets.token_hex(16),
            resourceVersion="1",
        )
        return 201, job

    def _patch(self, resource: str, namespace: str, name: str, patch: Any) -> tuple[int, Any]:
        current = self.objects.get((resource, namespace, name))
        if current is None:
            return 404, _status(404, f'{resource} "{name}" not found')
        version = (patch.get("metadata") or {}).get("resourceVersion")
        if version is not None and version != current["metadata"]["resourceVersion"]:
            return 409, _status(409, f"the object has been modified; version {version} is stale")
        patched = merge_patch(current, patch)
        checked = {k: v for k, v in patched.items() if k != "status"}
        checked["metadata"] = {
            k: v for k, v in patched["metadata"].items() if k not in ("uid", "resourceVersion")
        }
        try:
            kube.validate(checked)
        except AssertionError as error:
            return self._problem(422, str(error))
        patched["metadata"]["resourceVersion"] = str(
            int(current["metadata"]["resourceVersion"]) + 1
        )
        self.objects[(resource, namespace, name)] = patched
        return 200, patched


def _status(code: int, message: str) -> dict[str, Any]:
    reasons = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict"}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reasons.get(code, "BadRequest"),
        "code": code,
    }


@contextmanager
def serving(server: FakeApiServer) -> Iterator[FakeApiServer]:
    """Run ``server`` on 127.0.0.1 (a free port) for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, body = server.handle(self.command, self.path, self.headers, raw)
            except Exception as error:  # an answer, so the test fails on the problem, not a timeout
                status, body = server._problem(500, f"{self.command} {self.path}: {error!r}")
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.port = http.server_address[1]
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
        thread.join()
