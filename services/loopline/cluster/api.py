"""The connection to the Kubernetes API server: in-cluster credentials, and errors that name
the object and the API's answer.

Only the projected service-account token is used (``kubernetes_service_account_dir``: token,
CA bundle, namespace), as the chart mounts it for the monitor and rollout pods; a kubeconfig is
never read. Tests hand in an ``ApiClient`` of their own (an API server on 127.0.0.1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader
from urllib3.exceptions import HTTPError

from loopline.errors import LooplineError
from loopline.settings import Settings


class ClusterError(LooplineError):
    """A call to the Kubernetes API failed; the message names the object and the answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def in_cluster_client(settings: Settings) -> ApiClient:
    """An API client on the pod's projected service-account token (refreshed as it rotates)."""
    folder = settings.kubernetes_service_account_dir
    configuration = Configuration()
    try:
        InClusterConfigLoader(
            token_filename=str(folder / "token"), cert_filename=str(folder / "ca.crt")
        ).load_and_set(configuration)
    except ConfigException as error:
        raise ClusterError(
            f"no in-cluster Kubernetes credentials ({error}): the pod needs KUBERNETES_SERVICE_HOST"
            f" and a projected service-account token in {folder} (the chart's monitor and rollout"
            " CronJobs mount one)"
        ) from None
    configuration.retries = 0
    return ApiClient(configuration)


def namespace(settings: Settings) -> str:
    """``kubernetes_namespace``, else the namespace of the pod's service account."""
    if settings.kubernetes_namespace:
        return settings.kubernetes_namespace
    path = settings.kubernetes_service_account_dir / "namespace"
    try:
        return path.read_text().strip()
    except OSError:
        raise ClusterError(
            f"no Kubernetes namespace: set LOOPLINE_KUBERNETES_NAMESPACE or mount {path}"
        ) from None


def required(value: str | None, env: str, what: str) -> str:
    if not value:
        raise ClusterError(f"LOOPLINE_{env} is not set: it names the {what}")
    return value


def _status_message(error: ApiException) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    try:
        message = json.loads(error.body or "")["message"]
    except (ValueError, KeyError, TypeError):
        message = error.reason or "no message"
    text = str(message)
    return text if len(text) <= 300 else text[:300] + "…"


@contextmanager
def calling(action: str, obj: str) -> Iterator[None]:
    """Turn what the client raises while ``action`` on ``obj`` into a ClusterError.

    ``obj`` is ``kind namespace/name``. 403 and 404 add what the chart grants and names, since
    those are a missing Role rule or a wrong setting far more often than anything else.
    """
    try:
        yield
    except ApiException as error:
        hint = {
            401: " (the service-account token was refused)",
            403: " (the pod's Role does not grant it: see the chart's RBAC in docs/kubernetes.md)",
            404: " (check the name in the LOOPLINE_KUBERNETES_* settings)",
            409: " (it changed or exists already; run again)",
        }.get(error.status or 0, "")
        raise ClusterError(
            f"{action} {obj}: the API server answered {error.status} {error.reason}: "
            f"{_status_message(error)}{hint}",
            status=error.status,
        ) from None
    except HTTPError as error:
        raise ClusterError(f"{action} {obj}: the API server did not answer: {error}") from None
