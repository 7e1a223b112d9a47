"""``loopline rollout``'s decisions applied to the chart's InferenceService (through the test
API server, tests/k8s/apiserver.py): a canary that starts exports the challenger where the
InferenceService loads it and asks for its share; promote and roll back patch; shadow is refused
on KServe; nothing is sent off Kubernetes."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.errors import SettingsError
from loopline.model.artifact import save_model
from loopline.registry import ModelRegistry
from loopline.rollout.controller import RolloutResult
from loopline.rollout.inference_service import apply_to_inference_service
from loopline.settings import Settings
from loopline.spec import load_spec
from tests.k8s import kube
from tests.k8s.apiserver import FakeApiServer
from tests.k8s.chart_jobs import cronjobs_of, inference_service, job_settings
from tests.unit.model.test_artifact import FRAME, small_model
from tests.unit.registry.lineages import bare_lineage

pytestmark = pytest.mark.k8s
SPEC = load_spec("flight-delay")


def registry_of_two(home: Path) -> ModelRegistry:
    registry = ModelRegistry(home / "registry")
    for version in ("v1", "v2"):
        artifact = home / f"artifact-{version}"
        sha256 = save_model(small_model(), FRAME, artifact)
        registry.register(SPEC.name, artifact, bare_lineage(SPEC, sha256))
    registry.set_alias(SPEC.name, "champion", "v1")
    registry.set_alias(SPEC.name, "challenger", "v2")
    return registry


def result(action: str, mode: str = "canary") -> RolloutResult:
    return RolloutResult(SPEC.name, action, "v1", "v2", mode, 0.1, None)  # type: ignore[arg-type]


def test_canary_start_promote_and_roll_back_on_the_inference_service(
    renders: dict[str, list[kube.Doc]], api: FakeApiServer, tmp_path: Path
) -> None:
    rollout = next(
        d for d in cronjobs_of(renders["all-flags"], "rollout") if SPEC.name in str(d["metadata"])
    )
    settings = job_settings(rollout).model_copy(
        update={"home": tmp_path / "home", "kubernetes_model_export_dir": tmp_path / "models"}
    )
    registry = registry_of_two(tmp_path / "home")
    name = settings.kubernetes_inference_service
    assert name is not None

    started = apply_to_inference_service(settings, result("started"), client=api.client())
    assert started is not None
    assert started.challenger_percent == 10
    (canary,) = inference_service(api, name)["spec"]["canary"]
    assert canary["predictor"]["name"] == "v2"
    assert canary["predictor"]["model"]["storageUri"] == started.storage_uri
    exported = tmp_path / "models-v2"
    assert (exported / "manifest.json").exists()
    assert registry.get(SPEC.name, "v2").registered_sha256 is not None

    rolled_back = apply_to_inference_service(settings, result("rolled-back"), client=api.client())
    assert rolled_back is not None
    assert "canary" not in inference_service(api, name)["spec"]
    apply_to_inference_service(settings, result("started"), client=api.client())
    promoted = apply_to_inference_service(settings, result("promoted"), client=api.client())
    assert promoted is not None
    assert promoted.challenger_percent == 100
    assert inference_service(api, name)["spec"]["predictor"]["name"] == "v2"
    assert apply_to_inference_service(settings, result("waiting"), client=api.client()) is None

    with pytest.raises(SettingsError, match="--mode canary"):
        apply_to_inference_service(settings, result("started", "shadow"), client=api.client())


def test_nothing_is_sent_off_kubernetes(api: FakeApiServer) -> None:
    assert apply_to_inference_service(Settings(), result("promoted"), client=api.client()) is None
    assert api.requests == []
