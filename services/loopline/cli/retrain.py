"""``loopline retrain``: the loop's retraining step (registered on the ``loopline`` app in
``loopline.cli``)."""

from __future__ import annotations

import typer

from loopline.cli.common import JsonOption, ModelOption, epoch_printer, settings_of
from loopline.console import out, print_json, steps


def retrain(
    ctx: typer.Context,
    model: ModelOption = "flight-delay",
    as_json: JsonOption = False,
) -> None:
    """Train a challenger on the spec's sliding window (history and the live requests labelled
    since), score it and the champion on the same latest holdout, gate, register.

    Exits 0 whatever the gate decides; --json: the gate's decision as logged, both models'
    ROC AUC on the holdout, the window, and the monitor summary that triggered it."""
    from loopline.jobs.retraining import run_retraining
    from loopline.spec import load_spec

    spec = load_spec(model)
    with steps(f"retrain {spec.name}", total=4, quiet=as_json) as advance:
        outcome = run_retraining(
            settings_of(ctx),
            spec,
            progress=advance,
            on_epoch=epoch_printer(as_json),
        )
    summary = outcome.summary()
    if as_json:
        print_json(summary)
        return
    window, holdout = outcome.retraining.window, summary["holdout"]
    out.print(
        f"window {window.start:%Y-%m-%d %H:%M} → {window.end:%Y-%m-%d %H:%M} "
        f"({sum(outcome.retraining.live_rows.values()):,} live rows); holdout from "
        f"{holdout['start'][:16]}: {holdout['rows']:,} rows"
    )
    for role, value in holdout["roc_auc"].items():
        version = holdout["versions"].get(role, "-")
        shown = "-" if value is None else f"{value:.4f}"
        out.print(f"{role:>10} {version}: ROC AUC {shown}")
    decision = outcome.registered.decision
    out.print(f"gate: {decision.outcome} ({spec.name} {outcome.registered.version.version})")
    for reason in decision.reasons:
        out.print(f"  gate: {reason}")
