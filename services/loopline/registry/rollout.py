"""The rollout plan: which versions a registry-backed server serves, and how.

``loopline rollout`` writes it (atomically: a server never reads half a file) to
``<registry>/rollout/<model>.json``; every serving worker polls it (``serving.rollout_state``)
and swaps its models between micro-batches when it changes. Without a plan a server serves its
``model_ref`` (the champion) alone. Defined here, below both, because the rollout writes it and
serving reads it::

    {"model": "flight-delay", "champion": "v1", "challenger": "v2", "mode": "canary",
     "share": 0.1, "started_at": "2026-12-01T17:00:00Z"}
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from loopline.errors import RegistryError
from loopline.files import write_text_atomic

RolloutMode = Literal["shadow", "canary"]


class RolloutPlan(BaseModel):
    """What to serve: ``champion`` alone (``challenger`` None), or with ``challenger`` in
    ``mode``: ``shadow`` (it scores every request, never answers) or ``canary`` (it answers the
    ``share`` of request ids whose hash falls below it)."""

    model: str
    champion: str
    challenger: str | None = None
    mode: RolloutMode | None = None
    share: float = Field(default=0.0, ge=0.0, le=1.0)
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _consistent(self) -> RolloutPlan:
        if (self.challenger is None) != (self.mode is None):
            raise ValueError("a challenger needs a mode, and a mode a challenger")
        return self

    def encode(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def decode(cls, text: str | bytes) -> RolloutPlan:
        return cls.model_validate_json(text)


def plan_path(registry_root: Path, model: str) -> Path:
    return registry_root / "rollout" / f"{model}.json"


def write_plan(registry_root: Path, plan: RolloutPlan) -> None:
    write_text_atomic(plan_path(registry_root, plan.model), plan.encode())


def read_plan(registry_root: Path, model: str) -> RolloutPlan | None:
    """The model's plan; None when none was written. ``RegistryError`` when it is invalid."""
    path = plan_path(registry_root, model)
    try:
        return RolloutPlan.decode(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as error:
        raise RegistryError(f"rollout plan {path} is invalid: {error}") from error
