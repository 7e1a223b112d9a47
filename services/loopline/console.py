"""How CLI commands report: results on stdout (tables and lines for people, ``--json`` for
tools), progress and diagnostics on stderr, so ``loopline models list | wc -l`` counts models."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
"""Progress bars and diagnostics (stderr)."""

out = Console(soft_wrap=True)
"""Results for people: tables, summaries (stdout)."""


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_error(message: str) -> None:
    """One line on stderr, never wrapped: what went wrong and what to do about it."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=_default))


@contextmanager
def steps(title: str, total: int, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A progress bar advanced once per named step; ``advance(name)`` marks a step done."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[step]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,  # a bar is for people, not for logs
        transient=False,
    ) as progress:
        task = progress.add_task(title, total=total, step="")

        def advance(name: str) -> None:
            progress.update(task, advance=1, step=name)

        yield advance
