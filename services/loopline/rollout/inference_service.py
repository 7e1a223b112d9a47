"""A rollout decision applied to the model's KServe InferenceService, when Loopline runs on
Kubernetes (``kubernetes_inference_service`` set; docs/kubernetes.md).

There the predictor pods load one exported version from their storageUri, not the registry, so
they do not follow the rollout plan: the split is KServe's. A canary that starts exports the
challenger to its own location (``cluster.rollout.export_location``) and asks KServe for the
canary's share; a promotion or a roll-back is the matching patch. Shadow needs every pod to
score both versions, which a KServe predictor serving one storageUri cannot: it is refused with
the way out (``--mode canary``).
"""

from __future__ import annotations

from kubernetes.client import ApiClient

from loopline.cluster.rollout import RolloutApplied, apply_rollout, export_location
from loopline.errors import SettingsError
from loopline.registry.s3 import S3Prefix, export_to_s3, is_s3_uri
from loopline.registry.store import ModelRegistry
from loopline.rollout.controller import RolloutResult
from loopline.settings import Settings


def apply_to_inference_service(
    settings: Settings, result: RolloutResult, *, client: ApiClient | None = None
) -> RolloutApplied | None:
    """Patch the InferenceService for ``result``; None off Kubernetes or when nothing changed
    (waiting, idle). ``client``: in-cluster credentials when None."""
    if settings.kubernetes_inference_service is None:
        return None
    if result.mode == "shadow" and result.action == "started":
        raise SettingsError(
            "a shadow rollout needs servers that follow the registry's rollout plan; on KServe "
            "roll out with --mode canary (LOOPLINE_ROLLOUT_MODE=canary)"
        )
    if result.action == "started" and result.challenger is not None:
        return _start_canary(settings, result, result.challenger, client)
    if result.action == "promoted":
        return apply_rollout(settings, "promote", client=client)
    if result.action == "rolled-back":
        return apply_rollout(settings, "rollback", client=client)
    return None


def _start_canary(
    settings: Settings, result: RolloutResult, version: str, client: ApiClient | None
) -> RolloutApplied:
    model = result.model
    registry = ModelRegistry(settings.registry_dir)
    location = export_location(settings, version)
    if is_s3_uri(location.uri):
        export_to_s3(registry, model, version, S3Prefix.parse(location.uri), overwrite=True)
    elif location.path is not None:
        registry.export(model, version, location.path, overwrite=True)
    sha256 = registry.get(model, version).registered_sha256
    return apply_rollout(
        settings,
        "canary",
        version=version,
        storage_uri=location.uri,
        percent=result.canary_percent,
        artifact_sha256=sha256,
        client=client,
    )
