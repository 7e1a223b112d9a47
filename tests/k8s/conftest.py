"""Fixtures of the k8s tier: the chart rendered once per variant, the overlays rendered once, and
a test API server holding the chart's CronJobs and InferenceServices (tests/k8s/apiserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.k8s import kube
from tests.k8s.apiserver import FakeApiServer, serving
from tests.k8s.chart_jobs import chart_api_server

VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "all-flags": ("all-flags.yaml",),
    "knative-kpa": ("knative-kpa.yaml",),
    "knative-hpa-external-url": ("knative-hpa-external-url.yaml",),
}
"""Values files (tests/k8s/values/) of each render the tests check; default is values.yaml."""


@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    """The pinned tools, never whatever a PATH happens to hold."""
    kube.require_tools()


@pytest.fixture(scope="session")
def renders() -> dict[str, list[kube.Doc]]:
    return {name: kube.helm_template(values) for name, values in VARIANTS.items()}


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[kube.Doc]]:
    return {overlay.name: kube.kustomize(overlay) for overlay in kube.OVERLAYS}


@pytest.fixture
def api(renders: dict[str, list[kube.Doc]]) -> Iterator[FakeApiServer]:
    """The all-flags render's objects behind a test API server; no request may break a schema."""
    with serving(chart_api_server(renders["all-flags"])) as server:
        yield server
    assert server.problems == []
