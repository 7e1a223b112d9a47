"""The live-traffic verbs: ``replay`` of the live period, the ``skew`` check and ``ingest``
(registered on the ``loopline`` app in ``loopline.cli``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from typer._click.exceptions import UsageError

from loopline.cli.common import JsonOption, ModelOption, settings_of
from loopline.console import console, out, print_json
from loopline.errors import SettingsError
from loopline.settings_live import IngestStage


def replay(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="UTC day.")],
    end: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="UTC day, inclusive.")
    ],
    speed: Annotated[
        float | None, typer.Option(min=0.001, help="Times real time (default 3600).")
    ] = None,
    fastest: Annotated[bool, typer.Option("--max", help="As fast as the server answers.")] = False,
    model: ModelOption = "flight-delay",
    as_json: JsonOption = False,
) -> None:
    """Replay the live period's events and prediction requests, in time order, against the
    server at LOOPLINE_REPLAY_URL."""
    from datetime import UTC, timedelta

    from rich.progress import Progress

    from loopline.replay import replay as run_replay
    from loopline.spec import load_spec

    if fastest and speed is not None:
        raise UsageError("--speed and --max exclude each other")
    first = start.replace(tzinfo=UTC)
    last = end.replace(tzinfo=UTC) + timedelta(days=1)
    with Progress(console=console, disable=as_json or not console.is_terminal) as bar:
        task = bar.add_task("replay", total=None)
        summary = run_replay(
            settings_of(ctx),
            load_spec(model),
            first,
            last,
            speed=None if fastest else speed or 3600.0,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(summary)
        return
    out.print(
        f"replayed {summary['from']:%Y-%m-%d} → {summary['to']:%Y-%m-%d} in "
        f"{summary['seconds']:.1f} s: {summary['events']:,} events "
        f"({summary['events_per_s']:,.0f}/s), {summary['predictions']:,} predictions, "
        f"{summary['outcomes_joined']:,} outcomes joined"
    )
    for view, counts in summary["feature_status"].items():
        out.print(f"  {view:>26}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))


def skew(
    ctx: typer.Context,
    sample: Annotated[int, typer.Option(min=1, help="Logged predictions to check.")] = 1000,
    model: ModelOption = "flight-delay",
    as_json: JsonOption = False,
) -> None:
    """Compare the features logged predictions were served with to Feast's point-in-time
    features for the same entities and time."""
    from loopline.monitoring.skew import check_skew
    from loopline.spec import load_spec

    report = check_skew(settings_of(ctx), load_spec(model), sample).as_dict()
    if as_json:
        print_json(report)
        return
    table = Table("feature", "compared", "mismatched", "rate", "not fresh")
    for name, counts in report["features"].items():
        rate = counts["mismatch_rate"]
        table.add_row(
            name,
            str(counts["compared"]),
            str(counts["mismatched"]),
            "-" if rate is None else f"{rate:.4f}",
            str(counts["not_fresh"]),
        )
    out.print(table)
    for example in report["worst"]:
        out.print(
            f"  {example['feature']} at {example['event_timestamp']}: served "
            f"{example['served']}, offline {example['offline']} ({example['request_id']})"
        )


def ingest(
    ctx: typer.Context,
    shard: Annotated[
        int | None, typer.Option(min=0, help="The shard to consume (default: every shard).")
    ] = None,
    stage: Annotated[
        IngestStage | None,
        typer.Option(
            help="Run one stage alone: the repartition of the input stream into shards, or the "
            "shard consumer (default LOOPLINE_INGEST_STAGE: both, in one process)."
        ),
    ] = None,
) -> None:
    """Consume the live event stream: aggregates and weather to the online store, every event
    to the offline store, outcomes to the outcome join (docs/events.md). Runs until SIGTERM."""
    from loopline.ingest.runner import run as run_ingest

    settings = settings_of(ctx)
    if stage is not None:
        settings = settings.model_copy(update={"ingest_stage": stage})
    if shard is not None:
        settings = settings.model_copy(update={"ingest_shard": shard})
        if shard >= settings.ingest_shards:
            raise SettingsError(f"--shard {shard} is not below LOOPLINE_INGEST_SHARDS")
    run_ingest(settings)
