"""Fixtures of the k8s tier: the chart rendered once per variant, the overlays rendered once."""

from __future__ import annotations

import pytest

from tests.k8s import kube

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
