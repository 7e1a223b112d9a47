"""loopline.cluster against a test API server (tests/k8s/apiserver.py) holding the chart's own
CronJobs and InferenceServices: every request the real ``kubernetes`` client sends is checked
(route, token, content type, body against the Job and KServe CRD schemas), every request is
allowed by the chart's Role for that job, and the Roles grant nothing the code does not use."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from loopline.cluster import ClusterError, apply_rollout, export_location, trigger_retrain
from loopline.cluster.api import in_cluster_client, namespace
from loopline.settings import Settings
from tests.k8s import kube
from tests.k8s.apiserver import FakeApiServer, serving
from tests.k8s.chart_jobs import (
    assert_exact_rbac,
    chart_api_server,
    cronjobs_of,
    inference_service,
    job_account,
    job_env,
    job_settings,
)

pytestmark = pytest.mark.k8s


# --- the monitor: a Job from the retrain CronJob --------------------------------------------


def test_monitor_creates_a_job_from_each_retrain_cronjob(
    renders: dict[str, list[kube.Doc]], api: FakeApiServer
) -> None:
    docs = renders["all-flags"]
    for monitor in cronjobs_of(docs, "monitor"):
        settings = job_settings(monitor)
        cronjob_name = settings.kubernetes_retrain_cronjob
        assert cronjob_name is not None
        name = trigger_retrain(settings, "drift_share 0.42 over 7 days", client=api.client())
        cronjob = api.objects[("cronjobs", kube.NAMESPACE, cronjob_name)]
        assert cronjob["spec"]["suspend"] is True
        job = api.requests[-1].body
        assert name.startswith(f"{cronjob_name}-")
        assert len(name) <= 63
        assert job["metadata"]["annotations"] == {
            "cronjob.kubernetes.io/instantiate": "manual",
            "loopline.io/retrain-reason": "drift_share 0.42 over 7 days",
        }
        assert job["metadata"]["labels"] == cronjob["spec"]["jobTemplate"]["metadata"]["labels"]
        assert job["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob_name,
                "uid": cronjob["metadata"]["uid"],
                "controller": True,
            }
        ]
        assert job["spec"] == cronjob["spec"]["jobTemplate"]["spec"]
    assert [(r.verb, r.resource) for r in api.requests] == [
        ("get", "cronjobs"),
        ("create", "jobs"),
    ] * 2
    assert_exact_rbac(docs, job_account(docs, "monitor"), api.requests)


# --- the rollout: InferenceService patches ---------------------------------------------------


def test_standard_canary_promote_and_rollback(
    renders: dict[str, list[kube.Doc]], api: FakeApiServer
) -> None:
    """KServe 0.20 Standard mode: spec.canary, promotion by retargeting the stable predictor."""
    docs = renders["all-flags"]
    for rollout in cronjobs_of(docs, "rollout"):
        settings = job_settings(rollout)
        name = settings.kubernetes_inference_service
        assert name is not None
        champion = copy.deepcopy(inference_service(api, name)["spec"]["predictor"])
        where = export_location(settings, "v2")
        applied = apply_rollout(
            settings, "canary", version="v2", storage_uri=where.uri, percent=10, client=api.client()
        )
        assert (applied.mode, applied.challenger_percent) == ("Standard", 10)
        (canary,) = inference_service(api, name)["spec"]["canary"]
        assert canary["trafficPercent"] == 10
        assert canary["predictor"]["name"] == "v2"
        assert canary["predictor"]["model"]["storageUri"] == where.uri
        assert inference_service(api, name)["spec"]["predictor"] == champion
        apply_rollout(settings, "rollback", client=api.client())
        assert "canary" not in inference_service(api, name)["spec"]
        assert inference_service(api, name)["spec"]["predictor"] == champion
        apply_rollout(
            settings, "canary", version="v3", storage_uri=where.uri, percent=25, client=api.client()
        )
        promoted = apply_rollout(settings, "promote", client=api.client())
        spec = inference_service(api, name)["spec"]
        assert "canary" not in spec
        assert promoted.challenger_percent == 100
        assert spec["predictor"]["name"] == "v3"
        assert spec["predictor"]["model"]["storageUri"] == where.uri
    pinned = job_env(
        next(d for d in cronjobs_of(docs, "rollout") if "challenger" in d["metadata"]["name"])
    )
    assert pinned["LOOPLINE_KUBERNETES_INFERENCE_SERVICE"] == "flight-delay-challenger"
    assert_exact_rbac(docs, job_account(docs, "rollout"), api.requests)


def test_a_pinned_artifact_follows_the_version(
    renders: dict[str, list[kube.Doc]], api: FakeApiServer
) -> None:
    rollout = next(
        d
        for d in cronjobs_of(renders["all-flags"], "rollout")
        if "challenger" in d["metadata"]["name"]
    )
    settings = job_settings(rollout)
    sha = "ab" * 32
    apply_rollout(
        settings,
        "canary",
        version="v7",
        storage_uri="pvc://models/v7",
        percent=5,
        artifact_sha256=sha,
        client=api.client(),
    )
    (canary,) = inference_service(api, "flight-delay-challenger")["spec"]["canary"]
    pins = [e for e in canary["predictor"]["model"]["env"] if e["name"] == "LOOPLINE_MODEL_SHA256"]
    assert pins == [{"name": "LOOPLINE_MODEL_SHA256", "value": sha}]
    apply_rollout(settings, "promote", client=api.client())
    model = inference_service(api, "flight-delay-challenger")["spec"]["predictor"]["model"]
    assert {"name": "LOOPLINE_MODEL_SHA256", "value": sha} in model["env"]


def test_knative_canary_promote_and_rollback(renders: dict[str, list[kube.Doc]]) -> None:
    """Knative mode: canaryTrafficPercent; the champion's storageUri kept for the rollback."""
    docs = renders["knative-kpa"]
    (rollout,) = cronjobs_of(docs, "rollout")
    settings = job_settings(rollout)
    with serving(chart_api_server(docs)) as api:
        champion = inference_service(api, "flight-delay")["spec"]["predictor"]
        champion_uri = champion["model"]["storageUri"]
        where = export_location(settings, "v2")
        assert where.path is None
        assert where.uri == champion_uri.rstrip("/") + "-v2"
        apply_rollout(
            settings, "canary", version="v2", storage_uri=where.uri, percent=20, client=api.client()
        )
        predictor = inference_service(api, "flight-delay")["spec"]["predictor"]
        assert (predictor["canaryTrafficPercent"], predictor["model"]["storageUri"]) == (
            20,
            where.uri,
        )
        back = apply_rollout(settings, "rollback", client=api.client())
        predictor = inference_service(api, "flight-delay")["spec"]["predictor"]
        assert (predictor["canaryTrafficPercent"], predictor["model"]["storageUri"]) == (
            0,
            champion_uri,
        )
        assert back.storage_uri == champion_uri
        assert (
            "loopline.io/champion-storage-uri"
            not in inference_service(api, "flight-delay")["metadata"]["annotations"]
        )
        apply_rollout(
            settings, "canary", version="v3", storage_uri=where.uri, percent=20, client=api.client()
        )
        apply_rollout(settings, "promote", client=api.client())
        predictor = inference_service(api, "flight-delay")["spec"]["predictor"]
        assert "canaryTrafficPercent" not in predictor
        assert predictor["model"]["storageUri"] == where.uri
        with pytest.raises(ClusterError, match="no canary to undo"):
            apply_rollout(settings, "rollback", client=api.client())
    assert api.problems == []
    assert_exact_rbac(docs, job_account(docs, "rollout"), api.requests)


def test_export_location_on_the_pvc(renders: dict[str, list[kube.Doc]]) -> None:
    (rollout,) = cronjobs_of(renders["default"], "rollout")
    where = export_location(job_settings(rollout), "v4")
    assert where.uri == "pvc://loopline-data/serving/flight-delay-v4"
    assert where.path == Path("/var/lib/loopline/serving/flight-delay-v4")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "words"), [(403, "403 Forbidden"), (404, "404 Not Found"), (409, "409 Conflict")]
)
def test_api_errors_name_the_object_and_the_status(
    renders: dict[str, list[kube.Doc]], api: FakeApiServer, status: int, words: str
) -> None:
    docs = renders["all-flags"]
    monitor, rollout = cronjobs_of(docs, "monitor")[0], cronjobs_of(docs, "rollout")[0]
    api.fail_next(status)
    with pytest.raises(
        ClusterError,
        match=f"CronJob loopline/loopline-retrain-flight-delay: the API server answered {words}",
    ) as caught:
        trigger_retrain(job_settings(monitor), "drift", client=api.client())
    assert caught.value.status == status
    # The read succeeds, the patch is refused.
    original = api.handle

    def refuse_patch(method: str, path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        if method == "PATCH":
            api.fail_next(status)
        return original(method, path, headers, raw)

    api.handle = refuse_patch  # type: ignore[method-assign]
    with pytest.raises(
        ClusterError,
        match=rf"patching \(canary\) InferenceService loopline/flight-delay: .* answered {words}",
    ):
        apply_rollout(
            job_settings(rollout),
            "canary",
            version="v2",
            storage_uri="pvc://x/y",
            percent=10,
            client=api.client(),
        )


def test_a_missing_object_and_bad_arguments(api: FakeApiServer) -> None:
    settings = Settings(
        kubernetes_namespace="loopline",
        kubernetes_retrain_cronjob="nope",
        kubernetes_inference_service="nope",
    )
    with pytest.raises(
        ClusterError, match=r"reading CronJob loopline/nope: the API server answered 404.*not found"
    ):
        trigger_retrain(settings, "drift", client=api.client())
    with pytest.raises(ClusterError, match="traffic percent of 1-99, not 100"):
        apply_rollout(
            settings,
            "canary",
            version="v2",
            storage_uri="pvc://x",
            percent=100,
            client=api.client(),
        )
    with pytest.raises(ClusterError, match="LOOPLINE_KUBERNETES_RETRAIN_CRONJOB is not set"):
        trigger_retrain(Settings(kubernetes_namespace="loopline"), "drift", client=api.client())


def test_in_cluster_credentials_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The projected token and CA in kubernetes_service_account_dir, never a kubeconfig."""
    settings = Settings(kubernetes_service_account_dir=tmp_path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterError, match="no in-cluster Kubernetes credentials"):
        in_cluster_client(settings)
    with pytest.raises(ClusterError, match="no Kubernetes namespace"):
        trigger_retrain(
            Settings(kubernetes_service_account_dir=tmp_path, kubernetes_retrain_cronjob="x"), "r"
        )
    (tmp_path / "token").write_text("projected")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("team-a\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    configuration = in_cluster_client(settings).configuration
    assert configuration.host == "https://10.0.0.1:443"
    assert configuration.api_key["BearerToken"] == "bearer projected"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")
    assert namespace(settings) == "team-a"
