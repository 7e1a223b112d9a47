"""Start a rollout of the challenger, and decide it on live metrics: promote or roll back.

``start`` writes the registry's rollout plan (``registry.rollout``): every registry-backed
worker picks it up within ``rollout_poll_s`` and serves the challenger beside the champion in
shadow or canary. ``evaluate`` reads the labelled dataset (shadow rows included) since the plan
started, applies the rule (``rule``), and acts on it:

- promote: the ``champion`` alias moves to the challenger's version, ``challenger`` is
  cleared, the plan names the new champion alone; the old champion keeps its version number
  (``loopline models`` still lists it) and can be named again;
- roll back: ``challenger`` is cleared and the plan names the champion alone;
- wait: nothing changes.

Each start and each evaluation appends a ``Decision(kind="rollout")`` to the decision log and
returns a ``RolloutResult`` the verb prints and a deployment can act on (KServe's canary
percent and storage URI; the pushgateway's last-decision timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopline.errors import RegistryError
from loopline.outcomes.dataset import read_labelled
from loopline.registry import ModelRegistry
from loopline.registry.decisions import Decision, record_decision
from loopline.registry.rollout import RolloutMode, RolloutPlan, read_plan, write_plan
from loopline.rollout.rule import Sample, Thresholds, judge
from loopline.settings import Settings
from loopline.spec import ModelSpec

Action = Literal["started", "promoted", "rolled-back", "waiting", "idle"]
OUTCOMES: dict[str, Action] = {
    "promote": "promoted",
    "roll-back": "rolled-back",
    "wait": "waiting",
}


@dataclass(frozen=True)
class RolloutResult:
    """What a run of ``loopline rollout`` did; ``decision`` is what the decision log holds
    (None only when there was nothing to decide: ``idle``)."""

    model: str
    action: Action
    champion: str | None
    """The champion after this run."""
    challenger: str | None
    """The challenger the run was about (also after a promotion or roll-back)."""
    mode: RolloutMode | None
    share: float
    decision: Decision | None

    @property
    def canary_percent(self) -> int:
        """The traffic share the challenger answers now, in percent (KServe's
        ``canaryTrafficPercent``): 0 outside a running canary."""
        running = self.action in ("started", "waiting") and self.mode == "canary"
        return round(self.share * 100) if running else 0

    @property
    def decided_at(self) -> datetime | None:
        """For ``loopline_rollout_last_decision_timestamp_seconds{model,outcome}``."""
        return self.decision.at if self.decision is not None else None

    def as_dict(self) -> dict[str, Any]:
        """What ``loopline rollout --json`` prints: this, with the decision as logged."""
        return {
            "model": self.model,
            "action": self.action,
            "champion": self.champion,
            "challenger": self.challenger,
            "mode": self.mode,
            "share": self.share,
            "canary_percent": self.canary_percent,
            "decision": None if self.decision is None else self.decision.model_dump(mode="json"),
        }


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        min_labelled=settings.rollout_min_labelled,
        min_per_class=settings.rollout_min_per_class,
        max_labelled=settings.rollout_max_labelled,
        auc_margin=settings.rollout_auc_margin,
        bootstrap=settings.rollout_bootstrap,
        max_fallback_increase=settings.rollout_max_fallback_increase,
        max_p99_ratio=settings.rollout_max_p99_ratio,
        p99_slack_ms=settings.rollout_p99_slack_ms,
    )


def start(
    settings: Settings, model: str, mode: RolloutMode, share: float | None = None
) -> RolloutResult:
    """Serve the ``challenger`` alias beside the ``champion`` in ``mode`` (``share`` of request
    ids in canary, default ``rollout_share``). ``RegistryError`` when either alias is unset."""
    aliases = ModelRegistry(settings.registry_dir).aliases(model)
    missing = [alias for alias in ("champion", "challenger") if alias not in aliases]
    if missing:
        raise RegistryError(
            f"model {model!r} has no {' and no '.join(missing)}: nothing to roll out"
        )
    share = (share if share is not None else settings.rollout_share) if mode == "canary" else 0.0
    plan = RolloutPlan(
        model=model,
        champion=aliases["champion"],
        challenger=aliases["challenger"],
        mode=mode,
        share=share,
    )
    write_plan(settings.registry_dir, plan)
    reason = f"{plan.challenger} in {mode} beside {plan.champion}"
    if mode == "canary":
        reason += f", answering {share:.0%} of request ids"
    decision = Decision(
        kind="rollout",
        model=model,
        outcome="started",
        versions=_versions(plan),
        reasons=[reason],
        figures={"mode": mode, "share": share},
    )
    record_decision(settings.registry_dir, decision)
    return RolloutResult(model, "started", plan.champion, plan.challenger, mode, share, decision)


def evaluate(settings: Settings, model: str) -> RolloutResult:
    """Decide the running rollout. A challenger alias with no rollout running for it (the
    retrain just set it) is started in ``rollout_mode``; no challenger at all is ``idle``."""
    registry = ModelRegistry(settings.registry_dir)
    aliases = registry.aliases(model)
    plan = read_plan(settings.registry_dir, model)
    challenger = aliases.get("challenger")
    if challenger is None:
        champion = aliases.get("champion")
        return RolloutResult(model, "idle", champion, None, None, 0.0, None)
    if plan is None or plan.challenger != challenger or plan.champion != aliases.get("champion"):
        return start(settings, model, settings.rollout_mode)
    assert plan.mode is not None
    assert plan.challenger is not None
    spec = ModelSpec.model_validate(registry.get(model, "champion").lineage.spec)
    paired = plan.mode == "shadow"
    champion_rows, challenger_rows = _rows(settings, plan)
    judgement = judge(
        _sample(champion_rows, spec.label.name),
        _sample(challenger_rows, spec.label.name),
        paired,
        thresholds(settings),
    )
    action = OUTCOMES[judgement.verdict]
    champion = plan.champion
    if action == "promoted":
        registry.set_alias(model, "champion", plan.challenger)
        registry.clear_alias(model, "challenger")
        champion = plan.challenger
    if action == "rolled-back":
        registry.clear_alias(model, "challenger")
    if action != "waiting":
        write_plan(settings.registry_dir, RolloutPlan(model=model, champion=champion))
    decision = Decision(
        kind="rollout",
        model=model,
        outcome=action,
        versions=_versions(plan),
        reasons=judgement.reasons,
        figures={"mode": plan.mode, "share": plan.share, **judgement.figures},
    )
    record_decision(settings.registry_dir, decision)
    return RolloutResult(model, action, champion, plan.challenger, plan.mode, plan.share, decision)


def _versions(plan: RolloutPlan) -> dict[str, str]:
    versions = {"champion": plan.champion}
    if plan.challenger is not None:
        versions["challenger"] = plan.challenger
    return versions


def _rows(settings: Settings, plan: RolloutPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The champion's answered rows and the challenger's (its shadow rows in shadow, its
    answers in canary) of the labelled dataset, made since the plan started."""
    frame = read_labelled(settings.labelled_dir, shadow=True)
    if "prediction_timestamp" not in frame.columns:  # nothing joined yet
        return frame, frame
    frame = frame[frame["prediction_timestamp"] >= pd.Timestamp(plan.started_at)]
    versions, shadow = frame["model_version"], frame["shadow"]
    champion = frame[(versions == plan.champion) & ~shadow]
    challenger = frame[(versions == plan.challenger) & (shadow == (plan.mode == "shadow"))]
    return champion, challenger


def _sample(rows: pd.DataFrame, label: str) -> Sample:
    """A version's rows of the labelled dataset as the rule reads them."""
    statuses = [c for c in rows.columns if c.startswith("status_")]
    fallback = (
        (rows[statuses] == "fallback").any(axis=1).to_numpy(dtype=bool)
        if statuses
        else np.zeros(len(rows), dtype=bool)
    )
    latency = (
        rows["latency_ms"].to_numpy(dtype=np.float64, na_value=np.nan)
        if "latency_ms" in rows.columns
        else np.full(len(rows), np.nan)
    )
    if label not in rows.columns:
        empty = np.array([], dtype=np.float64)
        return Sample(np.array([], dtype=str), empty.astype(np.int64), empty, fallback, latency)
    labelled = rows[rows[label].notna()]
    return Sample(
        ids=labelled["request_id"].to_numpy(dtype=str),
        labels=labelled[label].to_numpy(dtype=np.int64),
        scores=labelled["probability"].to_numpy(dtype=np.float64),
        fallback=fallback,
        latency_ms=latency,
    )
