"""From `helm install` to a ready model: the first-run Job, the network paths it needs, storage a
single-node cluster has, and NOTES.txt and docs/kubernetes.md telling the same steps. What the
Job runs is checked against the CLI in test_job_commands.py; its pod is held to the restricted
profile and to no API access with every other pod in test_security.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.k8s import kube

pytestmark = pytest.mark.k8s

FIRST_RUN = ("Job", "loopline-first-run")
DOCS = kube.ROOT / "docs" / "kubernetes.md"


def _get(docs: list[kube.Doc], kind: str, name: str) -> kube.Doc:
    return next(d for d in docs if kube.key(d) == (kind, name))


def _notes(*sets: str) -> str:
    args: list[Any] = [kube.HELM, "install", "loopline", kube.CHART, "--dry-run=client"]
    args += ["-n", kube.NAMESPACE, *kube.helm_args(sets=sets)]
    return kube.run(args).split("NOTES:", 1)[1]


def test_first_run_job_is_a_post_install_hook(renders: dict[str, list[kube.Doc]]) -> None:
    job = _get(renders["default"], *FIRST_RUN)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert not kube.is_helm_test(job)
    jobs = yaml.safe_load((kube.CHART / "values.yaml").read_text())["jobs"]
    assert job["spec"]["activeDeadlineSeconds"] == jobs["firstRun"]["activeDeadlineSeconds"]
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "first-run"
    pod = template["spec"]
    assert pod["serviceAccountName"] == "loopline-jobs"
    (main,) = pod["containers"]
    assert main["resources"] == jobs["retrain"]["resources"]
    data = next(m for m in main["volumeMounts"] if m["name"] == "data")
    assert data == {"name": "data", "mountPath": "/var/lib/loopline", "readOnly": False}
    claim = next(v for v in pod["volumes"] if v["name"] == "data")
    assert claim["persistentVolumeClaim"]["claimName"] == "loopline-data"

    off = kube.helm_template(sets=["jobs.firstRun.enabled=false"])
    assert FIRST_RUN not in {kube.key(d) for d in off}


def test_kustomize_base_holds_it_as_a_plain_job(overlays: dict[str, list[kube.Doc]]) -> None:
    """`kubectl apply -k` has no hooks: the Job is created with everything else, once."""
    for overlay, docs in overlays.items():
        job = _get(docs, *FIRST_RUN)
        assert not any(k.startswith("helm.sh/") for k in job["metadata"].get("annotations", {}))
        assert job["spec"]["template"]["spec"]["containers"][0]["name"] == "first-run", overlay


def _egress_ports(policy: kube.Doc) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


def test_first_run_job_reaches_redis_and_object_storage(
    renders: dict[str, list[kube.Doc]],
) -> None:
    default = renders["default"]
    jobs = _get(default, "NetworkPolicy", "loopline-jobs")
    (selected,) = jobs["spec"]["podSelector"]["matchExpressions"]
    assert "first-run" in selected["values"]
    redis = _get(default, "NetworkPolicy", "loopline-redis")
    (peer,) = redis["spec"]["ingress"][0]["from"]
    assert "first-run" in peer["podSelector"]["matchExpressions"][0]["values"]
    assert _egress_ports(jobs) == {6379}
    # On S3 the jobs upload and the predictors' storage initializer downloads, on the endpoint's
    # port: minio.storage.svc:9000 in the knative-kpa values.
    for name in ("loopline-jobs", "loopline-predictor"):
        assert _egress_ports(_get(renders["knative-kpa"], "NetworkPolicy", name)) == {6379, 9000}
    s3 = ["modelStorage.type=s3", "modelStorage.s3.bucket=b", "modelStorage.s3.existingSecret=s"]
    for extra, port in [([], 443), (["modelStorage.s3.useHttps=false"], 80)]:
        docs = kube.helm_template(sets=[*s3, "modelStorage.s3.endpoint=minio", *extra])
        assert _egress_ports(_get(docs, "NetworkPolicy", "loopline-jobs")) == {6379, port}
        env = _get(docs, *FIRST_RUN)["spec"]["template"]["spec"]["containers"][0]["env"]
        endpoint = next(e["value"] for e in env if e["name"] == "AWS_ENDPOINT_URL")
        assert endpoint == ("https://minio" if port == 443 else "http://minio")


def _access_modes(docs: list[kube.Doc]) -> list[list[str]]:
    """The access modes of every volume claim a render creates, templates of StatefulSets too."""
    claims = [d["spec"] for d in docs if d["kind"] == "PersistentVolumeClaim"]
    claims += [
        template["spec"]
        for d in docs
        if d["kind"] == "StatefulSet"
        for template in d["spec"].get("volumeClaimTemplates", [])
    ]
    return [claim["accessModes"] for claim in claims]


def test_a_single_node_install_needs_no_read_write_many(
    renders: dict[str, list[kube.Doc]], overlays: dict[str, list[kube.Doc]]
) -> None:
    """The defaults and the dev overlay claim only ReadWriteOnce volumes, which every storage
    class (a single node's local-path, hostpath) offers; prod asks for ReadWriteMany."""
    base = kube.kustomize(kube.ROOT / "k8s" / "base")
    for render, docs in [("chart", renders["default"]), ("base", base), ("dev", overlays["dev"])]:
        modes = _access_modes(docs)
        assert len(modes) == 2, render  # loopline-data and Redis'
        assert all(m == ["ReadWriteOnce"] for m in modes), (render, modes)
        assert FIRST_RUN in {kube.key(d) for d in docs}, render
    prod = _get(overlays["prod"], "PersistentVolumeClaim", "loopline-data")
    assert prod["spec"]["accessModes"] == ["ReadWriteMany"]


def _oip_body(text: str, where: str) -> Any:
    """The JSON body of the first `curl .../v2/models/flight-delay/infer ... -d '...'`."""
    found = re.search(r"/v2/models/flight-delay/infer[^\n]*?-d '(.*?)'", text, re.DOTALL)
    assert found, f"{where} has no OIP infer example"
    return json.loads(found.group(1))


def test_notes_and_docs_tell_one_story_to_the_first_prediction() -> None:
    notes = _notes()
    docs = DOCS.read_text()
    readme = (kube.ROOT / "README.md").read_text()
    # The request both send is the README's, which tests/integration runs against a server.
    assert _oip_body(notes, "NOTES") == _oip_body(docs, "docs") == _oip_body(readme, "README")
    assert "docs/delivery.md" in notes
    assert "(delivery.md)" in docs
    assert "ghcr.io/loopline/loopline:0.1.0" in notes
    # The same commands, in the same order.
    steps = [
        "helm install loopline helm/loopline --namespace loopline --create-namespace --timeout 90m",
        "kubectl -n loopline logs job/loopline-first-run --all-containers",
        "kubectl -n loopline wait --for=condition=Ready --timeout=15m"
        " inferenceservice/flight-delay",
        "kubectl -n loopline port-forward service/flight-delay-predictor 8080:80",
        "curl http://127.0.0.1:8080/v2/models/flight-delay/ready",
    ]
    for text, where in ((notes, "NOTES"), (docs, "docs/kubernetes.md")):
        at = [text.find(step) for step in steps[1:]]
        assert -1 not in at, (where, [s for s, i in zip(steps[1:], at, strict=True) if i < 0])
        assert at == sorted(at), where
    assert steps[0] in docs
    assert "--timeout 90m" in notes
    # The NOTES point at the page's walk through the loop by its title.
    loop = "From install to the first automatic rollout"
    assert f'docs/kubernetes.md, "{loop}"' in notes
    assert f"\n## {loop}\n" in docs


def test_notes_follow_the_values() -> None:
    """Without the first-run Job the NOTES give the manual steps; an RWO volume is explained."""
    manual = _notes("jobs.firstRun.enabled=false")
    assert "loopline-first-run" not in manual
    assert "create job loopline-first-materialize --from=cronjob/loopline-materialize" in manual
    assert "--from=cronjob/loopline-retrain-flight-delay" in manual
    assert "ReadWriteOnce" in _notes()
    assert "ReadWriteOnce" not in _notes("persistence.accessModes={ReadWriteMany}")
