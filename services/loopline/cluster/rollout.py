"""Canary, promote and roll back a model on its InferenceService, the way KServe 0.20 documents
for the InferenceService's deployment mode (its ``serving.kserve.io/deploymentMode``).

Standard mode (``spec.canary``, KServe 0.20; ``canaryTrafficPercent`` is ignored there):
- canary: ``spec.canary`` holds one entry, ``trafficPercent`` P and a predictor named after the
  challenger's version with its storageUri; KServe runs it as its own Deployment and splits
  the traffic.
- promote: the stable predictor takes the canary's name and storageUri and ``spec.canary`` is
  removed; KServe retargets the stable Service to the canary's Deployment (no restart).
- roll back: ``spec.canary`` is removed; the stable predictor never changed.

Knative mode (``canaryTrafficPercent``):
- canary: ``canaryTrafficPercent`` P and the challenger's storageUri (a new revision gets P %);
  the champion's storageUri is kept in the ``loopline.io/champion-storage-uri`` annotation.
- promote: ``canaryTrafficPercent`` removed: the latest revision gets 100 %.
- roll back: ``canaryTrafficPercent`` 0 and the champion's storageUri again: all traffic on the
  champion.

Every change is one JSON merge patch (RFC 7386, ``application/merge-patch+json``: custom
resources take no strategic merge patch; ``null`` removes a field) carrying the
``resourceVersion`` read just before, so a concurrent change is refused with 409, not undone.
A pinned artifact (``LOOPLINE_MODEL_SHA256`` in the predictor's env) follows the version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kubernetes.client import ApiClient, CustomObjectsApi

from loopline.cluster.api import ClusterError, calling, in_cluster_client, namespace, required
from loopline.settings import Settings

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
CHAMPION_URI_ANNOTATION = "loopline.io/champion-storage-uri"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
PIN_ENV = "LOOPLINE_MODEL_SHA256"
MERGE_PATCH = "application/merge-patch+json"
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

Action = Literal["canary", "promote", "rollback"]
Mode = Literal["Standard", "Knative"]


@dataclass(frozen=True)
class RolloutApplied:
    """What one ``apply_rollout`` changed: the patch sent, and the traffic it asks for."""

    inference_service: str
    action: Action
    mode: Mode
    challenger_percent: int
    storage_uri: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class ExportLocation:
    """Where a version is exported for a canary: the folder in the job's mount (None on S3,
    where the URI itself is the target) and the storageUri KServe loads it from."""

    path: Path | None
    uri: str


def export_location(settings: Settings, version: str) -> ExportLocation:
    """``<kubernetes_model_storage_uri>-<version>`` (and the same folder in the PVC mount)."""
    base = required(
        settings.kubernetes_model_storage_uri, "KUBERNETES_MODEL_STORAGE_URI", "model's storageUri"
    ).rstrip("/")
    folder = settings.kubernetes_model_export_dir
    return ExportLocation(
        path=None if folder is None else folder.with_name(f"{folder.name}-{version}"),
        uri=f"{base}-{version}",
    )


def _mode(isvc: dict[str, Any], where: str) -> Mode:
    mode = (isvc.get("metadata", {}).get("annotations") or {}).get(MODE_ANNOTATION) or (
        isvc.get("status") or {}
    ).get("deploymentMode")
    if mode in ("Standard", "RawDeployment"):
        return "Standard"
    if mode in ("Knative", "Serverless"):
        return "Knative"
    raise ClusterError(f"{where} has no known {MODE_ANNOTATION} annotation ({mode!r})")


def _env(model: dict[str, Any], sha256: str | None) -> list[dict[str, Any]] | None:
    """The predictor's env with the pin set to ``sha256`` (or dropped); None when unpinned."""
    env: list[dict[str, Any]] = model.get("env") or []
    if not any(e.get("name") == PIN_ENV for e in env):
        return None
    kept = [e for e in env if e.get("name") != PIN_ENV]
    return kept + ([{"name": PIN_ENV, "value": sha256}] if sha256 else [])


def _model_change(model: dict[str, Any], uri: str, sha256: str | None) -> dict[str, Any]:
    change: dict[str, Any] = {"storageUri": uri}
    env = _env(model, sha256)
    if env is not None:
        change["env"] = env
    return change


def _canary_patch(
    isvc: dict[str, Any], mode: Mode, version: str, uri: str, percent: int, sha256: str | None
) -> dict[str, Any]:
    model = isvc["spec"]["predictor"]["model"]
    if mode == "Knative":
        return {
            "metadata": {"annotations": {CHAMPION_URI_ANNOTATION: model["storageUri"]}},
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": percent,
                    "model": _model_change(model, uri, sha256),
                }
            },
        }
    canary_model = {
        "name": "kserve-container",
        "modelFormat": model["modelFormat"],
        **_model_change(model, uri, sha256),
    }
    return {
        "spec": {
            "canary": [
                {"trafficPercent": percent, "predictor": {"name": version, "model": canary_model}}
            ]
        }
    }


def _promote_patch(isvc: dict[str, Any], mode: Mode, where: str) -> tuple[dict[str, Any], str]:
    spec = isvc["spec"]
    if mode == "Knative":
        if spec["predictor"].get("canaryTrafficPercent") is None:
            raise ClusterError(f"{where} has no canaryTrafficPercent: no canary to promote")
        uri = spec["predictor"]["model"]["storageUri"]
        patch: dict[str, Any] = {
            "metadata": {"annotations": {CHAMPION_URI_ANNOTATION: None}},
            "spec": {"predictor": {"canaryTrafficPercent": None}},
        }
        return patch, uri
    canaries = spec.get("canary") or []
    if len(canaries) != 1:
        raise ClusterError(
            f"{where} has {len(canaries)} entries in spec.canary, not one to promote"
        )
    canary = canaries[0]["predictor"]
    model = {k: canary["model"][k] for k in ("storageUri", "env") if k in canary["model"]}
    patch = {"spec": {"predictor": {"name": canary["name"], "model": model}, "canary": None}}
    return patch, model["storageUri"]


def _rollback_patch(isvc: dict[str, Any], mode: Mode, where: str) -> tuple[dict[str, Any], str]:
    model = isvc["spec"]["predictor"]["model"]
    if mode == "Standard":
        return {"spec": {"canary": None}}, model["storageUri"]
    annotations = isvc["metadata"].get("annotations") or {}
    champion = annotations.get(CHAMPION_URI_ANNOTATION)
    if not champion:
        raise ClusterError(
            f"{where} has no {CHAMPION_URI_ANNOTATION} annotation: no canary to undo"
        )
    patch = {
        "metadata": {"annotations": {CHAMPION_URI_ANNOTATION: None}},
        "spec": {"predictor": {"canaryTrafficPercent": 0, "model": {"storageUri": champion}}},
    }
    return patch, champion


def apply_rollout(
    settings: Settings,
    action: Action,
    *,
    version: str | None = None,
    storage_uri: str | None = None,
    percent: int | None = None,
    artifact_sha256: str | None = None,
    client: ApiClient | None = None,
) -> RolloutApplied:
    """Patch ``kubernetes_inference_service`` for ``action``.

    canary needs the challenger's ``version`` (the canary's name, e.g. ``v3``), its
    ``storage_uri`` (``export_location``) and ``percent`` (1-99); ``artifact_sha256`` replaces a
    pin. promote and rollback read what they undo or keep from the InferenceService itself.
    """
    name = required(
        settings.kubernetes_inference_service, "KUBERNETES_INFERENCE_SERVICE", "InferenceService"
    )
    ns = namespace(settings)
    where = f"InferenceService {ns}/{name}"
    if action == "canary":
        if version is None or not _NAME.match(version) or storage_uri is None:
            raise ClusterError(
                f"a canary on {where} needs a version (a DNS label) and a storageUri"
            )
        if percent is None or not 0 < percent < 100:
            raise ClusterError(
                f"a canary on {where} needs a traffic percent of 1-99, not {percent}"
            )
    api = CustomObjectsApi(client or in_cluster_client(settings))
    timeout = settings.kubernetes_timeout_s
    with calling("reading", where):
        answer = api.get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, name, _request_timeout=timeout
        )
    if not isinstance(answer, dict) or "spec" not in answer:
        raise ClusterError(f"reading {where}: the API server answered no InferenceService")
    isvc: dict[str, Any] = answer
    mode = _mode(isvc, where)
    patch: dict[str, Any]
    if action == "canary" and version and storage_uri and percent:
        patch = _canary_patch(isvc, mode, version, storage_uri, percent, artifact_sha256)
        uri, share = storage_uri, percent
    elif action == "promote":
        (patch, uri), share = _promote_patch(isvc, mode, where), 100
    else:
        (patch, uri), share = _rollback_patch(isvc, mode, where), 0
    patch.setdefault("metadata", {})["resourceVersion"] = isvc["metadata"]["resourceVersion"]
    with calling(f"patching ({action})", where):
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            PLURAL,
            name,
            patch,
            _content_type=MERGE_PATCH,
            _request_timeout=timeout,
        )
    return RolloutApplied(name, action, mode, share, uri, patch)
