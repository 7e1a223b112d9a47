"""The k8s tier's tools: the pinned binaries in .tools/, rendering, and schema validation.

Every tool runs with an empty kubeconfig and Helm's home folders in a temporary directory, so
nothing here can reach a cluster or read a user's configuration. ``make tools`` installs them.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
HELM = TOOLS / "bin" / "helm"
KUBECTL = TOOLS / "bin" / "kubectl"
PROMTOOL = TOOLS / "bin" / "promtool"
CHECKOV = TOOLS / "checkov-venv" / "bin" / "checkov"
NODE_MODULES = TOOLS / "node" / "node_modules"
CHART = ROOT / "helm" / "loopline"
VALUES = Path(__file__).parent / "values"
OVERLAYS = sorted(p for p in (ROOT / "k8s" / "overlays").iterdir() if p.is_dir())
SCHEMAS = ROOT.parent / "shared" / "schemas"
KSERVE_CRDS = (
    SCHEMAS / "kserve-v0.20-inferenceservices.crd.yaml",
    SCHEMAS / "kserve-v0.20-servingruntimes.crd.yaml",
)
KUBERNETES_VERSION = "1.35.0"
"""The schema version objects are validated against: the pinned kubectl's minor version."""

RELEASE = "loopline"
NAMESPACE = "loopline"

Doc = dict[str, Any]

_SANDBOX = tempfile.TemporaryDirectory(prefix="loopline-k8s-tools-")


def tool_env() -> dict[str, str]:
    """The environment every tool runs in: no kubeconfig, no in-cluster credentials."""
    sandbox = Path(_SANDBOX.name)
    kubeconfig = sandbox / "kubeconfig"
    kubeconfig.touch()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBERNETES_", "HELM_")) and k != "KUBECONFIG"
    }
    env.update(
        KUBECONFIG=str(kubeconfig),
        HELM_CACHE_HOME=str(sandbox / "helm-cache"),
        HELM_CONFIG_HOME=str(sandbox / "helm-config"),
        HELM_DATA_HOME=str(sandbox / "helm-data"),
    )
    return env


def require_tools() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in (HELM, KUBECTL, PROMTOOL, CHECKOV, NODE_MODULES / "@kubernetes-models")
        if not p.exists()
    ]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: run `make tools`")


def run(args: Sequence[str | Path], *, cwd: Path | None = None) -> str:
    """Run a tool; on failure raise with its output, which is what a reader needs."""
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=tool_env(),
        cwd=cwd,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result.stdout


def load_docs(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def helm_args(values: Sequence[str] = (), sets: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for name in values:
        args += ["--values", str(VALUES / name)]
    for item in sets:
        args += ["--set", item]
    return args


def helm_template(
    values: Sequence[str] = (), sets: Sequence[str] = (), *, skip_tests: bool = False
) -> list[Doc]:
    args: list[str | Path] = [HELM, "template", RELEASE, CHART, "--namespace", NAMESPACE]
    args += helm_args(values, sets)
    if skip_tests:
        args.append("--skip-tests")
    return load_docs(run(args))


def kustomize(overlay: Path) -> list[Doc]:
    return load_docs(run([KUBECTL, "kustomize", overlay]))


def key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def is_helm_test(doc: Doc) -> bool:
    return (doc["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"


# --- schema validation --------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema as kubectl's strict field validation applies it: an object with
    declared properties rejects unknown ones unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


_METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@functools.cache
def crd_validators() -> dict[tuple[str, str], Draft7Validator]:
    """(apiVersion, kind) → validator, from the KServe CRDs in shared/schemas."""
    validators: dict[tuple[str, str], Draft7Validator] = {}
    for path in KSERVE_CRDS:
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = _METADATA_SCHEMA
            schema["required"] = sorted({*schema.get("required", []), "spec"})
            validators[(f"{group}/{version['name']}", kind)] = Draft7Validator(schema)
    return validators


def validate(doc: Doc) -> None:
    """Validate one object against the Kubernetes schema or its CRD's schema; raise if invalid.

    Prometheus Operator objects are validated in bulk by ``validate_prometheus_operator``.
    """
    api, kind = doc["apiVersion"], doc["kind"]
    if api.startswith("monitoring.coreos.com/"):
        return
    validator = crd_validators().get((api, kind))
    if validator is not None:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            details = "\n".join(
                f"  {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors
            )
            raise AssertionError(f"{kind}/{doc['metadata'].get('name')} is invalid:\n{details}")
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise AssertionError(
            f"{kind}/{doc['metadata'].get('name')} is invalid at "
            f"{'/'.join(map(str, error.path))}: {error.message}"
        ) from None


_NODE_VALIDATOR = Path(__file__).parent / "validate_prometheus_operator.mjs"


def validate_prometheus_operator(docs: Sequence[Doc]) -> None:
    """Validate ServiceMonitors and PrometheusRules with the Prometheus Operator's schemas."""
    objects = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
    if not objects:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(objects, f)
        f.flush()
        out = run(["node", _NODE_VALIDATOR, NODE_MODULES, f.name])
    problems = json.loads(out)
    assert problems == [], "\n".join(problems)


# --- pods ---------------------------------------------------------------------------------------


def pod_specs(doc: Doc) -> Iterator[tuple[str, Doc]]:
    """(where, pod spec) of every pod an object creates; for an InferenceService the predictor,
    which KServe turns into the pod spec (its containers come from the ServingRuntime)."""
    for where, _, spec in pod_templates(doc):
        yield where, spec


def pod_templates(doc: Doc) -> Iterator[tuple[str, dict[str, str], Doc]]:
    """``pod_specs`` with the labels each pod gets (KServe gives an InferenceService's its own)."""
    kind, name = doc["kind"], doc["metadata"]["name"]
    spec = doc.get("spec", {})
    if kind == "Pod":
        yield f"Pod/{name}", _labels(doc), spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield f"{kind}/{name}", _labels(spec["template"]), spec["template"]["spec"]
    elif kind == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
        yield f"CronJob/{name}", _labels(template), template["spec"]
    elif kind == "InferenceService":
        predictor = dict(spec["predictor"])
        model = predictor.pop("model")
        # KServe names the model container kserve-container and takes its image from the runtime.
        yield (
            f"InferenceService/{name}",
            _labels(doc),
            {
                **predictor,
                "containers": [{"name": "kserve-container", **model}],
            },
        )


def _labels(template: Doc) -> dict[str, str]:
    return dict(template.get("metadata", {}).get("labels", {}))


def containers(pod: Doc) -> Iterator[Doc]:
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])
