"""The `loopline` CLI as a user runs it: a real process, settings from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopline.settings import Settings
from tests.conftest import TrainedSetup

pytestmark = pytest.mark.integration

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
COMMANDS = [
    [],
    ["data"],
    ["data", "prepare"],
    ["features"],
    ["features", "plan"],
    ["features", "apply"],
    ["features", "materialize"],
    ["train"],
    ["models"],
    ["models", "list"],
    ["models", "show"],
    ["models", "export"],
    ["replay"],
    ["skew"],
    ["ingest"],
    ["retrain"],
    ["rollout"],
]


def loopline(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LOOPLINE_HOME": str(settings.home),
        "LOOPLINE_FEATURE_REPO": str(settings.feature_repo),
    }
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = subprocess.run([LOOPLINE, *command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_models_show_json_prints_lineage_and_holdout_metrics(trained: TrainedSetup) -> None:
    result = loopline(trained.settings, "models", "show", trained.spec.name, "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["version"] == "v1"
    assert shown["aliases"] == ["champion"]
    assert shown["feature_service"] == "flight_delay_v1"
    assert "origin_weather:temp" in shown["features"]
    assert shown["train_window"]["start"].startswith("2013-01-01")
    assert len(shown["code_commit"]) >= 7
    assert len(shown["artifact_sha256"]) == 64
    assert shown["reference_sample"] == "reference_sample.parquet"
    for who in ("model", "baseline"):
        assert 0.5 < shown["metrics"][who]["roc_auc"] <= 1
        assert {"pr_auc", "log_loss", "brier", "precision", "recall"} <= set(shown["metrics"][who])
    assert "UA" in shown["metrics"]["slices"]["model"]["carrier"]
    assert shown["parameters"]["training"]["epochs"] == 2


def test_models_list_json(trained: TrainedSetup) -> None:
    result = loopline(trained.settings, "models", "list", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["name"] == trained.spec.name
    assert row["aliases"] == ["champion"]


def test_an_unknown_model_is_one_clear_line(trained: TrainedSetup) -> None:
    result = loopline(trained.settings, "models", "show", "no-such-model")
    assert result.returncode == 1
    assert "no-such-model" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"LOOPLINE_PREDICTION_LOG_SINK": "redis"}, "LOOPLINE_PREDICTION_LOG_REDIS_URL"),
        ({"LOOPLINE_REDIS_URL": "http://cache:6379"}, "LOOPLINE_REDIS_URL"),
        ({"LOOPLINE_WORKERS": "0"}, "LOOPLINE_WORKERS"),
        ({"LOOPLINE_MODEL_REF": "v9"}, "v9"),
        ({"REDIS_STORE": "1"}, "LOOPLINE_REDIS_URL"),
    ],
    ids=[
        "log-sink-without-redis",
        "not-a-redis-url",
        "no-workers",
        "no-such-version",
        "redis-repo",
    ],
)
def test_serve_refuses_settings_that_cannot_work_before_any_worker_starts(
    trained: TrainedSetup, tmp_path: Path, environment: dict[str, str], named: str
) -> None:
    settings = trained.settings
    if environment.pop("REDIS_STORE", None):  # a repo whose feature_store.yaml names Redis
        repo = tmp_path / "feature_repo"
        repo.mkdir()
        redis_config = Path(__file__).parents[2] / "feature_repo" / "feature_store.redis.yaml"
        (repo / "feature_store.yaml").write_text(redis_config.read_text())
        settings = Settings(home=settings.home, feature_repo=repo)
    env = {**os.environ, "LOOPLINE_HOME": str(settings.home), **environment}
    env["LOOPLINE_FEATURE_REPO"] = str(settings.feature_repo)
    if "LOOPLINE_REDIS_URL" not in environment:
        env.pop("LOOPLINE_REDIS_URL", None)
    result = subprocess.run(
        [LOOPLINE, "serve", "--port", "1"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 1
    assert named in result.stderr
    assert "Traceback" not in result.stderr


ERRORS = [
    (["data", "prepare", "--dataset", "nope"], "nope"),
    (["data", "prepare", "--bogus"], "--bogus"),
    (["features", "apply"], "feature_store.yaml"),
    (["features", "materialize"], "loopline data prepare"),
    (["features", "materialize", "--start", "garbage"], "--start"),
    (["train", "--model", "nope"], "nope"),
    (["train", "--model"], "--model"),
    (["models", "list", "--bogus"], "--bogus"),
    (["models", "show", "no-such-model"], "no-such-model"),
    (["models", "show"], "name"),
    (["models", "show", "flight-delay", "--version", "v9"], "v9"),
    (["models", "export", "flight-delay", "{nonempty}"], "--overwrite"),
    (["models", "export", "flight-delay", "{empty}", "--version", "latest-ish"], "latest-ish"),
    (["models", "export", "flight-delay", "s3://"], "s3://<bucket>/<prefix>"),
    (["features", "plan"], "feature_store.yaml"),
    (["ingest"], "LOOPLINE_EVENTS_REDIS_URL"),
    (["ingest", "--shard", "99"], "--shard"),
    (["replay", "--from", "garbage"], "--from"),
    (["replay", "--speed", "0"], "--speed"),
    (["skew", "--sample", "0"], "--sample"),
    (["skew", "--sample", "10"], "no logged predictions"),
    (["serve", "--workers", "0"], "--workers"),
    (["no-such-verb"], "no-such-verb"),
    (["rollout", "--mode", "shadow"], "no challenger"),
    (["rollout", "--evaluate", "--mode", "canary"], "--evaluate"),
    (["rollout", "--share", "0.2"], "--share"),
]


@pytest.mark.parametrize(("command", "named"), ERRORS, ids=[" ".join(c) for c, _ in ERRORS])
def test_every_user_error_is_one_line_on_stderr_and_a_non_zero_exit(
    trained: TrainedSetup, tmp_path: Path, command: list[str], named: str
) -> None:
    """An empty feature repo (nothing applied, nothing prepared) and the trained registry."""
    (tmp_path / "nonempty").mkdir()
    (tmp_path / "nonempty" / "keep.txt").write_text("a user's file")
    argv = [a.format(nonempty=tmp_path / "nonempty", empty=tmp_path / "empty") for a in command]
    settings = Settings(home=trained.settings.home, feature_repo=tmp_path / "no-repo")
    result = loopline(settings, *argv)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert named in lines[0]
    assert (tmp_path / "nonempty" / "keep.txt").read_text() == "a user's file"


def test_results_go_to_stdout(trained: TrainedSetup) -> None:
    listed = loopline(trained.settings, "models", "list")
    assert listed.returncode == 0
    assert "flight-delay" in listed.stdout
    assert listed.stderr == ""
    shown = loopline(trained.settings, "models", "show", trained.spec.name)
    assert json.loads(shown.stdout)["version"] == "v1"
    versioned = loopline(trained.settings, "--version")
    assert versioned.stdout.startswith("loopline ")
