"""The chart's jobs as loopline.cluster meets them: a test API server holding the chart's
CronJobs and InferenceServices, the Settings a CronJob's env gives, and the check that a job's
Roles grant exactly the calls it made (tests/k8s/test_cluster.py)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from loopline.settings import Settings
from tests.k8s import kube
from tests.k8s.apiserver import FakeApiServer, Request

Grant = tuple[str, str, str, str | None]
"""(verb, API group, resource, name or None for any)."""


def chart_api_server(docs: list[kube.Doc]) -> FakeApiServer:
    server = FakeApiServer()
    for doc in docs:
        if doc["kind"] in ("CronJob", "InferenceService"):
            server.add(copy.deepcopy(doc))
    return server


def _grants(docs: list[kube.Doc], account: str) -> set[Grant]:
    """What the Roles bound to ``account`` allow, one grant per verb, resource and name."""
    bound = {
        d["roleRef"]["name"]
        for d in docs
        if d["kind"] == "RoleBinding"
        and {"kind": "ServiceAccount", "name": account, "namespace": kube.NAMESPACE}
        in d["subjects"]
    }
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    grants: set[Grant] = set()
    for role in (d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] in bound):
        for rule in role["rules"]:
            names = rule.get("resourceNames") or [None]
            grants |= set(
                itertools.product(rule["verbs"], rule["apiGroups"], rule["resources"], names)
            )
    return grants


def _allowed(grants: set[Grant], request: Request) -> Grant | None:
    for grant in ((request.verb, request.group, request.resource, request.name),):
        if grant in grants:
            return grant
    wildcard = (request.verb, request.group, request.resource, None)
    return wildcard if wildcard in grants else None


def assert_exact_rbac(docs: list[kube.Doc], account: str, requests: list[Request]) -> None:
    grants = _grants(docs, account)
    used = set()
    for request in requests:
        grant = _allowed(grants, request)
        assert grant is not None, f"{account} may not {request}"
        used.add(grant)
    assert grants - used == set(), f"{account} is granted more than it uses"


def job_account(docs: list[kube.Doc], component: str) -> str:
    (account,) = {
        pod["serviceAccountName"]
        for d in cronjobs_of(docs, component)
        for _, pod in kube.pod_specs(d)
    }
    return account


def job_env(doc: kube.Doc) -> dict[str, str]:
    (_, pod), *_ = kube.pod_specs(doc)
    return {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}


def job_settings(doc: kube.Doc, **extra: Any) -> Settings:
    """Settings as the chart's CronJob ``doc`` sets them (its LOOPLINE_KUBERNETES_* env)."""
    env = {
        k.removeprefix("LOOPLINE_").lower(): v
        for k, v in job_env(doc).items()
        if k.startswith("LOOPLINE_KUBERNETES_")
    }
    # Validating a body against the schemas takes seconds on a busy machine the first time.
    return Settings(kubernetes_namespace=kube.NAMESPACE, kubernetes_timeout_s=120, **env, **extra)


def cronjobs_of(docs: list[kube.Doc], component: str) -> list[kube.Doc]:
    found = [
        d
        for d in docs
        if d["kind"] == "CronJob" and d["metadata"]["name"].startswith(f"loopline-{component}-")
    ]
    assert found
    return found


def inference_service(api: FakeApiServer, name: str) -> kube.Doc:
    """The InferenceService ``name`` as the test API server holds it now."""
    return api.objects[("inferenceservices", kube.NAMESPACE, name)]
