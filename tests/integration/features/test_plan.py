"""``loopline features plan`` and ``features apply --json`` against real Feast applies: an
unchanged repo plans no change (``feast plan`` 0.67 says every view is "Updated"), an edited
definition is an update naming its field, a new one is created, a removed one deleted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopline.features.plan import FeaturePlan, ObjectPlan, plan
from loopline.features.store import apply
from loopline.settings import Settings

pytestmark = pytest.mark.integration

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
VIEWS = {"origin_weather", "plane_attributes", "origin_departure_stats", "carrier_departure_stats"}


def loopline_json(settings: Settings, *args: str) -> FeaturePlan:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")},
        "LOOPLINE_HOME": str(settings.home),
        "LOOPLINE_FEATURE_REPO": str(settings.feature_repo),
    }
    result = subprocess.run(
        [LOOPLINE, *args, "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return FeaturePlan.model_validate_json(result.stdout)


def changes(planned: FeaturePlan) -> dict[tuple[str, str], ObjectPlan]:
    return {(o.kind, o.name): o for o in planned.objects if o.change != "unchanged"}


def test_apply_json_reports_each_object_and_an_unchanged_repo_plans_no_change(
    repo_settings: Settings,
) -> None:
    applied = loopline_json(repo_settings, "features", "apply")
    created = {o.name for o in applied.objects if o.kind == "feature view"}
    assert created == VIEWS
    assert {o.change for o in applied.objects} == {"created"}
    assert ("on demand feature view", "flight_context") in changes(applied)
    assert ("feature service", "flight_delay_v1") in changes(applied)
    assert applied.online_store == "sqlite"

    again = loopline_json(repo_settings, "features", "plan")
    assert not again.changed, changes(again)
    assert {o.name for o in again.objects} == {o.name for o in applied.objects}
    reapplied = loopline_json(repo_settings, "features", "apply")
    assert not reapplied.changed, changes(reapplied)


def test_an_edited_new_or_removed_definition_is_planned(repo_settings: Settings) -> None:
    apply(repo_settings)
    views = repo_settings.feature_repo / "feature_views.py"
    source = views.read_text()
    edited = source.replace("ttl=timedelta(hours=2)", "ttl=timedelta(hours=3)")
    assert edited != source
    views.write_text(edited)
    planned = changes(plan(repo_settings))
    assert list(planned) == [("feature view", "origin_weather")]
    assert planned["feature view", "origin_weather"].fields == ["ttl"]

    apply(repo_settings)
    assert not plan(repo_settings).changed
    # The on-demand view removed (and from the service that read it), a service added.
    (repo_settings.feature_repo / "on_demand.py").unlink()
    (repo_settings.feature_repo / "feature_services.py").write_text(
        "from feast import FeatureService\n"
        "from feature_views import origin_weather, plane_attributes\n\n"
        "flight_delay_v1 = FeatureService(\n"
        "    name='flight_delay_v1', features=[origin_weather, plane_attributes]\n"
        ")\n"
        "weather_only = FeatureService(name='weather_only', features=[origin_weather])\n"
    )
    planned = changes(plan(repo_settings))
    assert planned["feature service", "weather_only"].change == "created"
    assert planned["feature service", "flight_delay_v1"].fields == ["features"]
    assert planned["on demand feature view", "flight_context"].change == "deleted"
    assert ("feature view", "origin_weather") not in planned
