"""What every ``loopline`` verb shares: the settings built at start-up, ``--json``, and the
training verbs' progress line per epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.console import console
from loopline.settings import Settings

if TYPE_CHECKING:  # the model package imports torch: only the training verbs load it
    from loopline.model.train import EpochReport

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ModelOption = Annotated[str, typer.Option(help="Model spec name or path to a spec YAML.")]
"""``--model``, for the verbs that read a model's spec (default: the shipped flight-delay)."""


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command built (``main``), once per run."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def epoch_printer(quiet: bool) -> Callable[[EpochReport], None] | None:
    """One line per training epoch on the console; None (nothing printed) with ``--json``."""
    if quiet:
        return None

    def show(report: EpochReport) -> None:
        console.print(
            f"  epoch {report.epoch}: loss {report.train_loss:.4f}, validation ROC AUC "
            f"{report.validation_roc_auc:.4f}"
        )

    return show
