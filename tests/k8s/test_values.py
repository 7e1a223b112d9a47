"""values.yaml and values.schema.json: every value documented with a ``## @param`` line, every
value typed by the schema (and nothing more), and bad values refused at render time."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.k8s import kube

pytestmark = pytest.mark.k8s

VALUES_YAML = kube.CHART / "values.yaml"
VALUES_SCHEMA = kube.CHART / "values.schema.json"


def _leaves(node: Any, schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the settings in values.yaml. The schema says where a setting is a map of
    settings (declared properties) rather than a free-form value (labels, NetworkPolicy peers);
    the keys of a list of models are documented once, as ``models[0].<key>``."""
    props = schema.get("properties")
    if isinstance(node, dict) and props:
        out: set[str] = set()
        for k, v in node.items():
            assert k in props, f"{prefix}.{k} is not in values.schema.json"
            out |= _leaves(v, props[k], f"{prefix}.{k}" if prefix else k)
        return out
    items = schema.get("items", {})
    if isinstance(node, list) and items.get("additionalProperties") is False:
        return {p for item in node for p in _leaves(item, items, f"{prefix}[0]")}
    return {prefix}


def _values_and_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    return yaml.safe_load(VALUES_YAML.read_text()), json.loads(VALUES_SCHEMA.read_text())


def test_every_value_is_documented() -> None:
    text = VALUES_YAML.read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.MULTILINE))
    leaves = _leaves(*_values_and_schema())
    assert leaves - documented == set(), "values without a ## @param line"
    assert documented - leaves == set(), "## @param lines naming no value"
    assert 300 <= len(text.splitlines()) < 1000


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    if (
        schema.get("type") == "array"
        and schema.get("items", {}).get("additionalProperties") is False
    ):
        return _schema_paths(schema["items"], f"{prefix}[0]")
    props = schema.get("properties")
    if not props:
        return {prefix}
    out: set[str] = set()
    for k, v in props.items():
        out |= _schema_paths(v, f"{prefix}.{k}" if prefix else k)
    return out


def test_values_schema_matches_values() -> None:
    values, schema = _values_and_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)
    # Every value has a schema entry and every schema entry a value (global is Helm's own).
    assert _leaves(values, schema) == _schema_paths(schema) - {"global"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["predictor.autoscaling.class=bogus"], "class"),
        (["kserve.deploymentMode=Serverless"], "deploymentMode"),
        (["image.pullPolicy=Sometimes"], "pullPolicy"),
        (["typo=1"], "typo"),
        (["predictor.autoscaling.cpuUtilization=150"], "cpuUtilization"),
        (["securityContext.runAsUser=0"], "runAsUser"),
        (["predictor.autoscaling.class=kpa"], "needs kserve.deploymentMode=Knative"),
        (["predictor.probes.readiness=tcp"], "readiness"),
        (
            ["predictor.probes.readiness=grpc", "kserve.deploymentMode=Knative"],
            "readiness=grpc needs kserve.deploymentMode=Standard",
        ),
        (["modelStorage.type=s3"], "needs modelStorage.s3.bucket"),
        # host[:port], as KServe's serving.kserve.io/s3-endpoint annotation; the scheme is useHttps.
        (["modelStorage.s3.endpoint=http://minio:9000"], "endpoint"),
        (["redis.enabled=false"], "externalRedis.url or externalRedis.existingSecret"),
        (["models[0].artifactSha256=not-a-sha256"], "artifactSha256"),
    ],
)
def test_invalid_values_are_refused(sets: list[str], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        kube.helm_template(sets=sets)


def test_canary_needs_knative(tmp_path: Path) -> None:
    values = tmp_path / "canary.yaml"
    values.write_text(
        yaml.safe_dump(
            {"models": [{"name": "flight-delay", "spec": "x", "canaryTrafficPercent": 5}]}
        )
    )
    with pytest.raises(AssertionError, match="canaryTrafficPercent needs"):
        kube.run([kube.HELM, "template", "x", kube.CHART, "--values", values])
