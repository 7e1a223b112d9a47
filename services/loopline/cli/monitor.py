"""``loopline monitor``: drift and live performance of the champion, and the decision to
retrain (registered on the ``loopline`` app in ``loopline.cli``)."""

from __future__ import annotations

from typing import Annotated

import typer

from loopline.cli.common import JsonOption, ModelOption, settings_of
from loopline.console import out, print_json
from loopline.settings import Settings


def monitor(
    ctx: typer.Context,
    model: ModelOption = "flight-delay",
    window_days: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Days of logged predictions (default LOOPLINE_MONITOR_WINDOW_DAYS)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the champion's live window of served features and probabilities with its
    training reference (Evidently), measure live performance from the joined outcomes, decide
    whether to retrain and append the decision to the decision log. Exit 0 for every decision."""
    from loopline.monitoring.monitor import run_monitor
    from loopline.spec import load_spec

    settings = settings_of(ctx)
    result = run_monitor(settings, load_spec(model), window_days)
    job = _start_retrain_job(settings, result.reasons) if result.retrain else None
    if as_json:
        decision = result.to_decision().model_dump(mode="json")
        print_json(decision | {"summary": result.summary(), "retrain_job": job})
        return
    out.print(
        f"{result.model} {result.champion_version}: {result.rows:,} predictions "
        f"{result.window.start:%Y-%m-%d %H:%M} → {result.window.end:%Y-%m-%d %H:%M} UTC"
    )
    if result.drift is not None:
        for feature in result.drift.features:
            mark = "drifted" if feature.drifted else ""
            out.print(f"  {feature.name:>28}: {feature.score:.4f} {feature.method:<14} {mark}")
    out.print(f"decision: {result.decision}")
    for reason in result.reasons:
        out.print(f"  - {reason}")
    if result.report is not None:
        out.print(f"report: {result.report}")
    if job is not None:
        out.print(f"retrain Job {job} created from {settings.kubernetes_retrain_cronjob}")
    elif result.retrain:
        out.print("next: loopline retrain (no LOOPLINE_KUBERNETES_RETRAIN_CRONJOB to start it)")
    if result.push == "failed":
        out.print("pushing the gauges to LOOPLINE_PUSHGATEWAY_URL failed (logged); carried on")


def _start_retrain_job(settings: Settings, reasons: list[str]) -> str | None:
    """On Kubernetes (``kubernetes_retrain_cronjob`` set), a Job from the suspended retrain
    CronJob; elsewhere None, and the caller runs ``loopline retrain`` itself."""
    if settings.kubernetes_retrain_cronjob is None:
        return None
    from loopline.cluster.retrain import trigger_retrain

    return trigger_retrain(settings, "; ".join(reasons) or "the monitor decided to retrain")
