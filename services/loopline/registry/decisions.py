"""The decision log: every automated decision about a model, with its reasons and figures.

The monitor (retrain or not), the promotion gate (may a retrained version go further) and the
rollout (promote or roll back) each append one ``Decision`` to
``<registry>/decisions/<model>.jsonl`` so that a person can read, after the fact, what the
loop did and why. One JSON object per line, written with ``O_APPEND`` in a single ``write``
(lines of a few KiB are not interleaved between processes on a local file system); a line that
cannot be decoded is reported, never skipped in silence.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from loopline.errors import RegistryError

DecisionKind = Literal["monitor", "gate", "rollout"]


class Decision(BaseModel):
    """One decision: who decided (``kind``), about which versions, what, and why."""

    kind: DecisionKind
    model: str
    outcome: str = Field(
        description="What was decided: e.g. `retrain`/`no-retrain`, `challenger`/`rejected`, "
        "`promoted`/`rolled-back`/`waiting`."
    )
    versions: dict[str, str] = Field(
        default_factory=dict, description="Role → version, e.g. champion: v1, challenger: v2."
    )
    reasons: list[str] = Field(default_factory=list, description="Why, in sentences.")
    figures: dict[str, float | int | str | None] = Field(
        default_factory=dict, description="The numbers the decision read."
    )
    report: str | None = Field(None, description="Path of the report it was based on, if any.")
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def encode(self) -> str:
        return self.model_dump_json() + "\n"

    @classmethod
    def decode(cls, line: str) -> Decision:
        return cls.model_validate_json(line)


def decisions_path(registry_root: Path, model: str) -> Path:
    return registry_root / "decisions" / f"{model}.jsonl"


def record_decision(registry_root: Path, decision: Decision) -> None:
    """Append ``decision`` to its model's log."""
    path = decisions_path(registry_root, decision.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, decision.encode().encode())
    finally:
        os.close(descriptor)


def read_decisions(registry_root: Path, model: str) -> Iterator[Decision]:
    """The model's decisions, oldest first (none when it has no log yet)."""
    path = decisions_path(registry_root, model)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield Decision.decode(line)
            except ValidationError as error:
                raise RegistryError(f"{path}:{number}: not a decision: {error}") from error
