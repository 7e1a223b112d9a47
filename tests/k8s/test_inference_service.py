"""The predictor: the InferenceServices and the ServingRuntime they run on, in each mode (Standard,
Knative with KPA or HPA): the KServe contract, the settings the container gets, its ports,
probes and volumes."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from tests.k8s import kube

pytestmark = pytest.mark.k8s


def _env(container: kube.Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_inference_service_contract(renders: dict[str, list[kube.Doc]]) -> None:
    docs = renders["default"]
    runtime = next(d for d in docs if d["kind"] == "ServingRuntime")
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    assert model["modelFormat"] in [
        {"name": f["name"], "version": f["version"]}
        for f in runtime["spec"]["supportedModelFormats"]
    ]
    assert model["storageUri"] == "pvc://loopline-data/serving/flight-delay"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 70)
    assert "canaryTrafficPercent" not in predictor
    assert model["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}
    env = _env(model)
    assert env["LOOPLINE_MODEL_PATH"] == "/mnt/models"
    assert env["LOOPLINE_REDIS_URL"] == "redis://loopline-redis:6379/0"
    assert env["LOOPLINE_FEATURE_REPO"] == "/var/run/loopline/feature_repo"

    full = renders["all-flags"]
    first, second = (d for d in full if d["kind"] == "InferenceService")
    assert (
        first["spec"]["predictor"]["minReplicas"],
        first["spec"]["predictor"]["maxReplicas"],
    ) == (
        2,
        6,
    )
    assert second["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/flight-delay/v2"
    assert _env(first["spec"]["predictor"]["model"])["LOOPLINE_REDIS_URL"] == (
        "redis://:$(REDIS_PASSWORD)@loopline-redis:6379/0"
    )
    assert "LOOPLINE_MODEL_SHA256" not in env  # no pin by default
    assert "LOOPLINE_MODEL_SHA256" not in _env(first["spec"]["predictor"]["model"])
    assert _env(second["spec"]["predictor"]["model"])["LOOPLINE_MODEL_SHA256"] == (
        "2f4c0d3b6a9e8f7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"
    )


def test_knative_modes(renders: dict[str, list[kube.Doc]]) -> None:
    kpa = next(d for d in renders["knative-kpa"] if d["kind"] == "InferenceService")
    annotations = kpa["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Knative"
    assert annotations["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    predictor = kpa["spec"]["predictor"]
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["minReplicas"] == 0
    assert predictor["model"]["storageUri"] == "s3://loopline-models/prod/serving/flight-delay/"
    assert _env(predictor["model"])["LOOPLINE_REDIS_URL"] == {
        "secretKeyRef": {"name": "loopline-external-redis", "key": "url"}
    }
    account = next(
        d for d in renders["knative-kpa"] if kube.key(d) == ("ServiceAccount", "loopline-predictor")
    )
    assert account["secrets"] == [{"name": "loopline-s3"}]
    hpa = next(d for d in renders["knative-hpa-external-url"] if d["kind"] == "InferenceService")
    assert hpa["metadata"]["annotations"]["autoscaling.knative.dev/class"] == (
        "hpa.autoscaling.knative.dev"
    )
    assert hpa["spec"]["predictor"]["scaleMetric"] == "cpu"
    assert hpa["spec"]["predictor"]["model"]["storageUri"] == (
        "pvc://shared-loopline/serving/flight-delay"
    )


def test_serving_runtime_ports_and_probes(renders: dict[str, list[kube.Doc]]) -> None:
    runtime = next(d for d in renders["default"] if d["kind"] == "ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    assert container["args"] == ["serve", "--port=3000", "--grpc-port=8081"]
    assert container["ports"] == [
        {"name": "http1", "containerPort": 3000, "protocol": "TCP"},
        {"name": "h2c", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 3000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 3000}
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert runtime["spec"]["protocolVersions"] == ["v2", "grpc-v2"]
    grpc_ready = kube.helm_template(sets=["predictor.probes.readiness=grpc"])
    runtime = next(d for d in grpc_ready if d["kind"] == "ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    assert container["readinessProbe"]["grpc"] == {"port": 8081}  # grpc.health.v1, service ""
    assert "httpGet" not in container["readinessProbe"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # Knative allows one port per container: HTTP only.
    knative = next(d for d in renders["knative-kpa"] if d["kind"] == "ServingRuntime")
    (container,) = knative["spec"]["containers"]
    assert [p["name"] for p in container["ports"]] == ["http1"]
    assert container["args"] == ["serve", "--port=3000"]


def _metrics_dir(isvc: kube.Doc) -> tuple[PurePosixPath, kube.Doc, kube.Doc]:
    """The predictor's PROMETHEUS_MULTIPROC_DIR, the mount that holds it and that mount's volume."""
    ((_, pod),) = kube.pod_specs(isvc)
    (container,) = pod["containers"]
    directory = PurePosixPath(_env(container)["PROMETHEUS_MULTIPROC_DIR"])
    mounts = [m for m in container["volumeMounts"] if directory.is_relative_to(m["mountPath"])]
    assert mounts, f"{directory} is on no volume"
    mount = max(mounts, key=lambda m: len(PurePosixPath(m["mountPath"]).parts))
    (volume,) = (v for v in pod["volumes"] if v["name"] == mount["name"])
    return directory, mount, volume


def test_metrics_files_are_in_memory(
    renders: dict[str, list[kube.Doc]], overlays: dict[str, list[kube.Doc]]
) -> None:
    """The workers update prometheus-client's multiprocess files through mmap on every request:
    they are on a memory-backed emptyDir (on a disk, writeback stalls the workers), writable, in a
    folder below the mount point, which BentoML can remove and re-create when it starts. So in
    every variant of the chart and in every kustomize overlay."""
    values = yaml.safe_load((kube.CHART / "values.yaml").read_text())
    size = values["predictor"]["metricsDirSizeLimit"]
    for name, docs in {**renders, **overlays}.items():
        services = [d for d in docs if d["kind"] == "InferenceService"]
        assert services, name
        for isvc in services:
            directory, mount, volume = _metrics_dir(isvc)
            assert directory.parent == PurePosixPath(mount["mountPath"]), name
            assert not mount.get("readOnly", False), name
            assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": size}, name
    resized = kube.helm_template(sets=["predictor.metricsDirSizeLimit=256Mi"], skip_tests=True)
    isvc = next(d for d in resized if d["kind"] == "InferenceService")
    assert _metrics_dir(isvc)[2]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}


def test_a_stopping_predictor_drains_within_its_grace_period(
    renders: dict[str, list[kube.Doc]],
) -> None:
    """Standard mode: a preStop sleep while the endpoint goes, then SIGTERM (readiness 503,
    serving drainSeconds more, then graceSeconds to finish); the grace period covers all three.
    Knative forbids lifecycle hooks (its queue-proxy drains)."""
    isvc = next(d for d in renders["default"] if d["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    env = _env(model)
    assert (env["LOOPLINE_SHUTDOWN_DRAIN_S"], env["LOOPLINE_SHUTDOWN_GRACE_S"]) == ("5", "20")
    assert predictor["terminationGracePeriodSeconds"] >= 5 + 5 + 20
    knative = next(d for d in renders["knative-kpa"] if d["kind"] == "InferenceService")
    assert "lifecycle" not in knative["spec"]["predictor"]["model"]
    with pytest.raises(AssertionError, match="terminationGracePeriodSeconds must be at least 30"):
        kube.helm_template(sets=["predictor.terminationGracePeriodSeconds=29"])
