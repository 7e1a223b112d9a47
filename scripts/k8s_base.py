"""Write k8s/base/loopline.yaml: the chart's default render, as plain manifests for kustomize.

The chart is the one source of the manifests; the kustomize base is its default render with the
Helm-only bits removed (the ``helm.sh/chart`` label, ``helm.sh/*`` annotations, the ``helm test``
pod), so ``kubectl apply -k`` and ``helm install`` create the same objects.

    python scripts/k8s_base.py            # rewrite k8s/base/loopline.yaml
    python scripts/k8s_base.py --check    # exit 1 if it is out of date with the chart

Runs the project-local helm (``make tools``) with an empty kubeconfig: no cluster is contacted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "loopline"
HELM = ROOT / ".tools" / "bin" / "helm"
BASE = ROOT / "k8s" / "base" / "loopline.yaml"
RELEASE = "loopline"
NAMESPACE = "loopline"
HEADER = """\
# Generated from helm/loopline by `make kube-base` (scripts/k8s_base.py): the chart's default
# render for release "loopline" in namespace "loopline", without Helm's own labels and hooks.
# Do not edit: change the chart and regenerate; customise in k8s/overlays/.
"""


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the job scripts), so the base reads like the chart."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_chart(helm: Path = HELM, chart: Path = CHART) -> list[dict[str, Any]]:
    """The chart's default render (tests skipped), one dict per object."""
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as kubeconfig:
        env = {**os.environ, "KUBECONFIG": kubeconfig.name}
        out = subprocess.run(
            [str(helm), "template", RELEASE, str(chart), "--namespace", NAMESPACE, "--skip-tests"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def strip_helm(node: Any) -> Any:
    """Remove Helm's label and annotations everywhere; mark objects as managed by kustomize."""
    if isinstance(node, dict):
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key == "labels" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != "helm.sh/chart"}
                if "app.kubernetes.io/managed-by" in value:
                    value["app.kubernetes.io/managed-by"] = "kustomize"
            elif key == "annotations" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if not k.startswith("helm.sh/")}
                if not value:
                    continue
            result[key] = strip_helm(value)
        return result
    if isinstance(node, list):
        return [strip_helm(item) for item in node]
    return node


def base_manifest(helm: Path = HELM, chart: Path = CHART) -> str:
    docs = [strip_helm(doc) for doc in render_chart(helm, chart)]
    body = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return HEADER + "---\n" + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the base is out of date")
    args = parser.parse_args()
    expected = base_manifest()
    if args.check:
        if not BASE.is_file() or BASE.read_text() != expected:
            print(f"{BASE.relative_to(ROOT)} is out of date: run `make kube-base`", file=sys.stderr)
            return 1
        return 0
    BASE.parent.mkdir(parents=True, exist_ok=True)
    BASE.write_text(expected)
    print(f"wrote {BASE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
