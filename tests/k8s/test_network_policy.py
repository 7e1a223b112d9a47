"""Under the chart's default deny, every port a pod serves on is admitted by some NetworkPolicy:
a port no policy admits is one nothing can reach (the ingest pods' /metrics once was)."""

from __future__ import annotations

import pytest

from tests.k8s import kube

pytestmark = pytest.mark.k8s


def _selects(selector: kube.Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (``matchLabels`` and ``In``/``NotIn``/``Exists`` expressions)
    matches ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        present = key in labels
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and present and labels[key] in expression["values"]:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _admitted(policies: list[kube.Doc], labels: dict[str, str], port: kube.Doc) -> bool:
    for policy in policies:
        spec = policy["spec"]
        if "Ingress" not in spec.get("policyTypes", []) or not _selects(
            spec["podSelector"], labels
        ):
            continue
        for rule in spec.get("ingress", []):
            ports = rule.get("ports")
            if not ports or any(
                p.get("port") in (port["containerPort"], port.get("name")) for p in ports
            ):
                return True
    return False


def test_every_served_port_is_admitted_under_default_deny(
    renders: dict[str, list[kube.Doc]],
) -> None:
    checked = 0
    for render, docs in renders.items():
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        if not any(p["metadata"]["name"].endswith("-default-deny") for p in policies):
            continue
        runtimes = [
            c for d in docs if d["kind"] == "ServingRuntime" for c in d["spec"]["containers"]
        ]
        for doc in docs:
            for where, labels, pod in kube.pod_templates(doc):
                # KServe takes an InferenceService's containers, ports included, from its runtime.
                is_isvc = doc["kind"] == "InferenceService"
                served = runtimes if is_isvc else pod.get("containers", [])
                for container in served:
                    for port in container.get("ports", []):
                        at = f"{render}: {where} {container['name']} port {port['containerPort']}"
                        assert _admitted(policies, labels, port), f"{at}: no policy admits it"
                        checked += 1
    assert checked >= 5
