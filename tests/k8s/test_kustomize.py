"""The kustomize base and overlays: generated from the chart, rendered by the pinned kubectl's
kustomize, valid against the same schemas, and holding the same objects as the chart's defaults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.k8s import kube

pytestmark = pytest.mark.k8s

OVERLAY_NAMES = [overlay.name for overlay in kube.OVERLAYS]


def test_overlays_exist() -> None:
    assert {"dev", "prod"} <= set(OVERLAY_NAMES)


def test_base_is_the_charts_default_render() -> None:
    result = subprocess.run(
        [sys.executable, str(kube.ROOT / "scripts" / "k8s_base.py"), "--check"],
        capture_output=True,
        text=True,
        env=kube.tool_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_validates(overlays: dict[str, list[kube.Doc]], overlay: str) -> None:
    for doc in overlays[overlay]:
        kube.validate(doc)
    kube.validate_prometheus_operator(overlays[overlay])


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_holds_the_charts_default_objects(
    renders: dict[str, list[kube.Doc]], overlays: dict[str, list[kube.Doc]], overlay: str
) -> None:
    chart = sorted(kube.key(d) for d in renders["default"] if not kube.is_helm_test(d))
    assert sorted(kube.key(d) for d in overlays[overlay]) == chart


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_puts_everything_in_its_namespace(
    overlays: dict[str, list[kube.Doc]], overlay: str
) -> None:
    docs = overlays[overlay]
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1
    # Pods name their service accounts without a namespace: each must be in the overlay.
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    used = {pod["serviceAccountName"] for d in docs for _, pod in kube.pod_specs(d)}
    assert used
    assert used <= accounts, used - accounts


def test_overlays_differ_where_environments_do(overlays: dict[str, list[kube.Doc]]) -> None:
    def isvc(overlay: str) -> kube.Doc:
        return next(d for d in overlays[overlay] if d["kind"] == "InferenceService")

    assert isvc("dev")["spec"]["predictor"]["maxReplicas"] == 1
    assert isvc("prod")["spec"]["predictor"]["minReplicas"] == 2
    images = {
        c["image"]
        for d in overlays["dev"]
        for _, pod in kube.pod_specs(d)
        for c in kube.containers(pod)
        if "loopline/loopline" in c.get("image", "")
    }
    assert images == {"ghcr.io/loopline/loopline:dev"}
    runtime = next(d for d in overlays["dev"] if d["kind"] == "ServingRuntime")
    assert runtime["spec"]["containers"][0]["image"] == "ghcr.io/loopline/loopline:dev"
