"""What every ``loopline`` verb shares: the settings built at start-up, and ``--json``."""

from __future__ import annotations

from typing import Annotated

import typer

from loopline.settings import Settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command built (``main``), once per run."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings
