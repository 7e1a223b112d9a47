"""The declarative model spec: a model is declared in YAML, not coded into the platform."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loopline.errors import SpecError

FieldKind = Literal["categorical", "numeric"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSpec(_Strict):
    name: str
    source: str
    exclude_statuses: list[str] = Field(default_factory=list)


class SplitSpec(_Strict):
    """Train ``[start, validation_start)``, validation, holdout ``[holdout_start, end)``."""

    start: date
    validation_start: date
    holdout_start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> SplitSpec:
        if not self.start < self.validation_start < self.holdout_start < self.end:
            raise ValueError(
                "split dates must satisfy start < validation_start < holdout_start < end"
            )
        return self


class NetworkSpec(_Strict):
    kind: Literal["tabular_mlp"] = "tabular_mlp"
    embedding_dim: int = Field(8, ge=1)
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(0.1, ge=0, lt=1)
    min_category_count: int = Field(20, ge=1)


class TrainingSpec(_Strict):
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(0.002, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(3, ge=1)
    reference_rows: int = Field(5000, ge=100)


class PromotionSpec(_Strict):
    metric: str = "roc_auc"
    min_improvement: float = 0.0
    max_gap_to_baseline: float = 0.01
    min_value: float = 0.0


class DriftSpec(_Strict):
    stattest_threshold: float = Field(0.05, gt=0, lt=1)
    drift_share: float = Field(0.3, gt=0, le=1)
    min_rows: int = Field(500, ge=1)


class RetrainingSpec(_Strict):
    """``loopline retrain``'s sliding window of ``window_days`` ending at the latest labelled
    outcome: train, then ``validation_days`` (early stopping), then the last ``holdout_days``,
    on which the challenger and the champion are both scored."""

    window_days: int = Field(243, ge=3)
    validation_days: int = Field(31, ge=1)
    holdout_days: int = Field(31, ge=1)

    @model_validator(mode="after")
    def _room_to_train(self) -> RetrainingSpec:
        if self.validation_days + self.holdout_days >= self.window_days:
            raise ValueError("validation_days + holdout_days must be less than window_days")
        return self


class BehaviourSpec(_Strict):
    """Expectations every trained artifact is checked against before the gate lets it pass."""

    raises_risk: list[str] = Field(default_factory=list)
    """Features whose rise (from their 5th to their 95th percentile in the reference rows)
    must raise the average predicted probability."""


class ModelSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    dataset: str
    feature_service: str
    request_id: str
    entity_keys: list[str]
    request_fields: dict[str, FieldKind]
    label: LabelSpec
    split: SplitSpec
    network: NetworkSpec = NetworkSpec()
    training: TrainingSpec = TrainingSpec()
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    promotion: PromotionSpec = PromotionSpec()
    drift: DriftSpec = DriftSpec()
    retraining: RetrainingSpec = RetrainingSpec()
    behaviour: BehaviourSpec = BehaviourSpec()
    slices: list[str] = Field(default_factory=list)
    example_request: dict[str, str | int | float] = Field(default_factory=dict)
    """A request as callers send it (entity keys and request fields), for the docs, the
    benchmark and smoke tests."""

    @model_validator(mode="after")
    def _example_is_complete(self) -> ModelSpec:
        expected = set(self.entity_keys) | set(self.request_fields)
        if self.example_request and set(self.example_request) != expected:
            raise ValueError(f"example_request must have exactly the fields {sorted(expected)}")
        return self

    def fields_of(self, kind: FieldKind) -> list[str]:
        return [name for name, field_kind in self.request_fields.items() if field_kind == kind]


def load_spec(name_or_path: str | Path) -> ModelSpec:
    """A spec by model name (shipped in ``loopline/specs``) or by the path of a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        text = _read(path)
    else:
        shipped = resources.files("loopline") / "specs" / f"{name_or_path}.yaml"
        if not shipped.is_file():
            known = sorted(p.name.removesuffix(".yaml") for p in shipped_specs())
            raise SpecError(f"no model spec named {name_or_path!r}; known: {known}")
        text = shipped.read_text()
    try:
        return ModelSpec.model_validate(yaml.safe_load(text))
    except ValidationError as error:
        raise SpecError(f"invalid model spec {name_or_path}: {error}") from error


def shipped_specs() -> list[Path]:
    return sorted(Path(str(resources.files("loopline") / "specs")).glob("*.yaml"))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise SpecError(f"cannot read model spec {path}: {error}") from error
