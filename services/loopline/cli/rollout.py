"""``loopline rollout``: start a rollout of the challenger, or decide the running one
(``--evaluate``, what the CronJob runs); docs/rollout.md. Registered in ``loopline.cli``."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from typer._click.exceptions import UsageError

from loopline.cli.common import JsonOption, settings_of
from loopline.console import out, print_json


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
    if as_json:
        print_json(result.as_dict())
        return
    if result.decision is None:
        out.print(f"{name}: no challenger to roll out; {result.champion or 'no champion'} serves")
        return
    versions = ", ".join(f"{role} {v}" for role, v in result.decision.versions.items())
    out.print(f"{name}: {result.action} ({versions})")
    for reason in result.decision.reasons:
        out.print(f"  {reason}")
