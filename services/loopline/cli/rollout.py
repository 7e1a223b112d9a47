"""``loopline rollout``: start a rollout of the challenger, or decide the running one
(``--evaluate``, what the CronJob runs); docs/rollout.md. Registered in ``loopline.cli``."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from typer._click.exceptions import UsageError

from loopline.cli.common import JsonOption, settings_of
from loopline.console import out, print_json
from loopline.settings import Settings


def rollout(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Model name (default LOOPLINE_MODEL_NAME).")
    ] = None,
    mode: Annotated[
        Literal["shadow", "canary"] | None,
        typer.Option(
            help="shadow: the challenger scores every request, never answers; "
            "canary: it answers --share of request ids (default LOOPLINE_ROLLOUT_MODE)."
        ),
    ] = None,
    share: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Canary share of request ids (default LOOPLINE_ROLLOUT_SHARE)."
        ),
    ] = None,
    evaluate: Annotated[
        bool,
        typer.Option(
            "--evaluate",
            help="Decide the running rollout on live metrics: promote, "
            "roll back or wait (starts one if a new challenger has none).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Roll the registry's challenger out beside the champion, or decide it on live metrics.
    Every decision exits 0; it is appended to the decision log."""
    from loopline.rollout.controller import evaluate as decide
    from loopline.rollout.controller import start
    from loopline.rollout.inference_service import apply_to_inference_service

    settings = settings_of(ctx)
    name = model or settings.model_name
    if evaluate and (mode is not None or share is not None):
        raise UsageError("--evaluate decides the running rollout: --mode and --share start one")
    if share is not None and mode != "canary":
        raise UsageError("--share is the canary's: give --mode canary")
    if evaluate:
        result = decide(settings, name)
    else:
        result = start(settings, name, mode or settings.rollout_mode, share)
    applied = apply_to_inference_service(settings, result)
    pushed = _push_gauge(settings, name)
    if as_json:
        patch = None if applied is None else {"action": applied.action, "patch": applied.patch}
        print_json(result.as_dict() | {"inference_service": patch, "push": pushed})
        return
    if applied is not None:
        out.print(
            f"InferenceService {applied.inference_service}: {applied.action} "
            f"({applied.challenger_percent} % on the challenger, {applied.mode} mode)"
        )
    if pushed == "failed":
        out.print("pushing the rollout gauge to LOOPLINE_PUSHGATEWAY_URL failed (logged)")
    if result.decision is None:
        out.print(f"{name}: no challenger to roll out; {result.champion or 'no champion'} serves")
        return
    versions = ", ".join(f"{role} {v}" for role, v in result.decision.versions.items())
    out.print(f"{name}: {result.action} ({versions})")
    for reason in result.decision.reasons:
        out.print(f"  {reason}")


def _push_gauge(settings: Settings, model: str) -> str:
    """The model's rollout gauge, rebuilt from its decision log, to the Pushgateway (if set)."""
    from loopline.pushgateway import push
    from loopline.registry.decisions import read_decisions
    from loopline.rollout.gauges import JOB, rollout_gauges

    decisions = read_decisions(settings.registry_dir, model)
    return push(settings.pushgateway_url, JOB, model, rollout_gauges(model, decisions))
