"""Every `loopline` command the manifests run is a verb the CLI has.

The chart (every job switched on, in every variant of conftest.VARIANTS), the kustomize base and
the overlays are rendered; each container of every CronJob, Job and Pod, and the ServingRuntime's,
is read for the `loopline ...` invocations it runs: its command, its args on the image's
entrypoint (the Dockerfile's ENTRYPOINT, `loopline`), or each simple command of a `/bin/sh -c`
script. Each invocation's verb path (`features materialize`, `train`, `models export`) must be a
command registered in the typer app, its arguments must parse, and `loopline <verb> --help` of
this virtualenv must succeed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s import kube
from tests.k8s.commands import (
    LOOPLINE,
    check,
    container_invocations,
    invocations,
    script_invocations,
)
from tests.k8s.conftest import VARIANTS

pytestmark = pytest.mark.k8s


# --- renders ------------------------------------------------------------------------------------


def _enabled_flags(node: Any, prefix: str) -> list[str]:
    if not isinstance(node, dict):
        return []
    flags = [f"{prefix}.enabled"] if "enabled" in node else []
    for key, value in node.items():
        flags += _enabled_flags(value, f"{prefix}.{key}")
    return flags


def all_jobs_sets() -> list[str]:
    """--set items that switch on every `enabled` flag under `jobs` in values.yaml."""
    values = yaml.safe_load((kube.CHART / "values.yaml").read_text())
    flags = _enabled_flags(values["jobs"], "jobs")
    assert flags, "no jobs.*.enabled flags in values.yaml"
    return [f"{flag}=true" for flag in flags]


@pytest.fixture(scope="module")
def chart_renders() -> dict[str, list[kube.Doc]]:
    """Each variant with every job switched on, the helm test pod included."""
    sets = all_jobs_sets()
    return {name: kube.helm_template(values, sets) for name, values in VARIANTS.items()}


@pytest.fixture(scope="module")
def kustomize_renders(overlays: dict[str, list[kube.Doc]]) -> dict[str, list[kube.Doc]]:
    return {
        "base": kube.kustomize(kube.ROOT / "k8s" / "base"),
        **{f"overlay-{name}": docs for name, docs in overlays.items()},
    }


def _help_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(LOOPLINE_HOME=str(home / "home"), LOOPLINE_FEATURE_REPO=str(home / "feature_repo"))
    return env


# --- tests --------------------------------------------------------------------------------------


def test_every_enabled_job_flag_is_switched_on(chart_renders: dict[str, list[kube.Doc]]) -> None:
    """The renders below hold every job: each CronJob runs loopline in its main container."""
    assert "jobs.materialize.enabled=true" in all_jobs_sets()
    for variant, docs in chart_renders.items():
        cronjobs = [d for d in docs if d["kind"] in ("CronJob", "Job")]
        assert {d["metadata"]["name"] for d in cronjobs} >= {
            "loopline-first-run",
            "loopline-materialize",
            "loopline-retrain-flight-delay",
        }, variant
        for doc in cronjobs:
            (where, pod), *_ = kube.pod_specs(doc)
            runs = [i for c in pod["containers"] for i in container_invocations(where, c)]
            assert runs, f"{variant}: {where} runs no loopline command"


def test_chart_jobs_run_existing_verbs(
    chart_renders: dict[str, list[kube.Doc]], tmp_path: Path
) -> None:
    used: set[tuple[str, ...]] = set()
    for variant, docs in chart_renders.items():
        found = invocations(docs)
        assert found, variant
        used |= check(found)
    # Not vacuous: the scripts are parsed down to each verb they run.
    assert used >= {
        ("data", "prepare"),
        ("features", "apply"),
        ("features", "materialize"),
        ("train",),
        ("models", "show"),
        ("models", "export"),
        ("serve",),
    }, used
    for verb in sorted(used):
        result = subprocess.run(
            [str(LOOPLINE), *verb, "--help"],
            capture_output=True,
            text=True,
            env=_help_env(tmp_path),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"loopline {' '.join(verb)} --help exited {result.returncode}\n"
            f"{result.stdout}\n{result.stderr}"
        )
        assert "Usage:" in result.stdout, verb


def test_kustomize_jobs_run_existing_verbs(kustomize_renders: dict[str, list[kube.Doc]]) -> None:
    for render, docs in kustomize_renders.items():
        found = invocations(docs)
        assert {i.where.split(" ")[0] for i in found} >= {
            "Job/loopline-first-run",
            "CronJob/loopline-materialize",
            "CronJob/loopline-retrain-flight-delay",
            "ServingRuntime/loopline",
        }, render
        assert check(found) >= {("features", "materialize"), ("train",), ("models", "export")}


def _runs(docs: list[kube.Doc], kind: str, name: str) -> list[tuple[str, ...]]:
    """The loopline invocations of the main container of the job ``kind``/``name``."""
    job = next(d for d in docs if kube.key(d) == (kind, name))
    main = {"first-run", "retrain", "materialize"}
    return [i.argv for i in invocations([job]) if i.where.split(" container ")[1] in main]


def _export(name: str, target: str) -> tuple[str, ...]:
    return ("models", "export", name, target, "--version", "champion", "--overwrite")


def test_train_job_exports_where_the_inference_service_loads(
    chart_renders: dict[str, list[kube.Doc]],
) -> None:
    """On the chart's PVC the export goes to the folder the storageUri names (mounted at
    persistence.mountPath in the jobs), on S3 to the storageUri's prefix; elsewhere (another
    claim) the job only trains."""
    default = chart_renders["default"]
    isvc = next(d for d in default if kube.key(d) == ("InferenceService", "flight-delay"))
    assert (
        isvc["spec"]["predictor"]["model"]["storageUri"]
        == "pvc://loopline-data/serving/flight-delay"
    )
    assert _runs(default, "CronJob", "loopline-retrain-flight-delay") == [
        ("retrain", "--model", "flight-delay"),
        _export("flight-delay", "/var/lib/loopline/serving/flight-delay"),
    ]
    # Another claim (pvc://models/...): no job can write it.
    assert _runs(
        chart_renders["all-flags"], "CronJob", "loopline-retrain-flight-delay-challenger"
    ) == [("retrain", "--model", "flight-delay")]
    kpa = chart_renders["knative-kpa"]
    s3_uri = "s3://loopline-models/prod/serving/flight-delay"
    isvc = next(d for d in kpa if kube.key(d) == ("InferenceService", "flight-delay"))
    # With the trailing "/" the storage initializer copies this model's objects only, not those
    # of a model whose name extends it (tests/integration/registry/test_s3_export.py).
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == s3_uri + "/"
    assert _runs(kpa, "CronJob", "loopline-retrain-flight-delay") == [
        ("retrain", "--model", "flight-delay"),
        _export("flight-delay", s3_uri),
    ]
    # An existing claim is still the chart's PVC: its folder is exported into.
    existing = chart_renders["knative-hpa-external-url"]
    assert _runs(existing, "CronJob", "loopline-retrain-flight-delay")[-1] == _export(
        "flight-delay", "/var/lib/loopline/serving/flight-delay"
    )


def test_first_run_job_takes_an_empty_pvc_to_every_exported_model(
    chart_renders: dict[str, list[kube.Doc]],
) -> None:
    """Reference data, features, then each model: trained unless it has a champion, and its
    champion exported where the train CronJob exports it."""
    features = [
        ("data", "prepare"),
        ("features", "apply"),
        ("features", "materialize"),
    ]

    def first_train(name: str) -> list[tuple[str, ...]]:
        return [
            ("models", "show", name, "--version", "champion"),
            ("train", "--model", "flight-delay"),
        ]

    assert _runs(chart_renders["default"], "Job", "loopline-first-run") == [
        *features,
        *first_train("flight-delay"),
        _export("flight-delay", "/var/lib/loopline/serving/flight-delay"),
    ]
    assert _runs(chart_renders["all-flags"], "Job", "loopline-first-run") == [
        *features,
        *first_train("flight-delay"),
        _export("flight-delay", "/var/lib/loopline/serving/flight-delay"),
        *first_train("flight-delay-challenger"),
    ]
    assert _runs(chart_renders["knative-kpa"], "Job", "loopline-first-run") == [
        *features,
        *first_train("flight-delay"),
        _export("flight-delay", "s3://loopline-models/prod/serving/flight-delay"),
    ]


def test_a_verb_the_cli_lacks_is_caught(chart_renders: dict[str, list[kube.Doc]]) -> None:
    """The check is not vacuous: a CronJob running a verb the CLI lacks (`loopline drift`), in
    args on the entrypoint or inside a script, and an option a verb lacks, all fail."""
    cron = next(
        d for d in chart_renders["default"] if kube.key(d) == ("CronJob", "loopline-materialize")
    )
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    main = pod["containers"][0]
    on_entrypoint = {**main, "command": None, "args": ["drift", "--model", "flight-delay"]}
    in_script = {**main, "args": ["loopline features apply\nexec loopline drift --model x"]}
    bad_option = {**main, "args": ["loopline train --modle flight-delay"]}
    for container, message in [
        (on_entrypoint, "`loopline drift`, which is no command"),
        (in_script, "`loopline drift`, which is no command"),
        (bad_option, "--modle"),
    ]:
        found = list(container_invocations("CronJob/broken", container))
        assert found
        with pytest.raises(AssertionError, match=message):
            check(found)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            'test -f "$X/manifest.json" || loopline data prepare\n'
            "loopline features apply && exec loopline features materialize",
            [("data", "prepare"), ("features", "apply"), ("features", "materialize")],
        ),
        (
            "set -e; LOOPLINE_HOME=/x env loopline train --model 'a b' \\\n  --json | cat",
            [("train", "--model", "a b", "--json")],
        ),
        (
            "echo /var/lib/loopline/serving; /opt/loopline/bin/loopline serve >/tmp/log",
            [("serve",)],
        ),
        (
            "loopline models show 'm' >/dev/null 2>&1 || loopline train --model m 2>/tmp/err",
            [("models", "show", "m"), ("train", "--model", "m")],
        ),
    ],
)
def test_script_parsing(script: str, expected: list[tuple[str, ...]]) -> None:
    assert list(script_invocations(script, "test")) == expected
