"""Champion and challenger in one worker, and the rollout plan they follow.

``Models`` is what one micro-batch is scored with: the champion alone, or with a challenger in
``shadow`` (the challenger scores every row too; the answer is the champion's, the challenger's
score goes to the log as the record's ``shadow``) or ``canary`` (the rows whose request id
hashes below ``share`` are answered by the challenger, logged with its version). The canary's
hash is blake2b of the request id, so a caller that sends the same id is answered by the same
version on every worker and after every restart.

``RolloutWatcher`` polls the registry's rollout plan (``registry.rollout``, written by
``loopline rollout``) every ``rollout_poll_s``. When it changes, the versions it names are
loaded and verified in a thread (``Scorer.load``, against the registry's sha256), then
``InferenceCore.models`` is replaced on the event loop: a batch takes the ``Models`` in place
when it begins and completes on them, so requests in flight finish on the models they started
on and nothing is dropped. A plan that cannot be served (a version missing or tampered with, or
one that reads other features) is logged and ignored: the worker goes on serving what it had.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loopline.features.online import Lookup
from loopline.predictions import ShadowScore
from loopline.registry.rollout import RolloutMode, RolloutPlan, read_plan
from loopline.serving.schema import Row
from loopline.serving.scorer import Scorer
from loopline.serving.served import ServedModel, resolve_model
from loopline.settings import Settings

logger = logging.getLogger(__name__)
_SPACE = 2**64


def in_canary(request_id: str, share: float) -> bool:
    """Whether the canary answers ``request_id``: a stable hash of it, below ``share``."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * _SPACE


@dataclass(frozen=True, slots=True)
class Scored:
    """One row's answer, the version that gave it, and the shadow's score if one ran."""

    probability: float
    decision: bool
    version: str
    shadow: ShadowScore | None = None


@dataclass(frozen=True)
class Models:
    champion: Scorer
    challenger: Scorer | None = None
    mode: RolloutMode | None = None
    share: float = 0.0

    def score(
        self, rows: Sequence[Row], lookup: Lookup, ids: Sequence[str], fields: Sequence[str]
    ) -> list[Scored]:
        """Every row's answer. The champion raising raises; the challenger raising never fails
        a request: the champion answers its rows instead (a warning is logged)."""
        champion = self.champion
        if self.challenger is None:
            return _answers(champion, champion.probabilities(rows, lookup, fields))
        if self.mode == "shadow":
            served = _answers(champion, champion.probabilities(rows, lookup, fields))
            shadows = self._challenger(rows, lookup, fields)
            if shadows is None:
                return served
            version = self.challenger.version
            return [
                Scored(a.probability, a.decision, a.version, ShadowScore(version, p, d))
                for a, (p, d) in zip(served, shadows, strict=True)
            ]
        chosen = [i for i, id_ in enumerate(ids) if in_canary(id_, self.share)]
        if not chosen:
            return _answers(champion, champion.probabilities(rows, lookup, fields))
        picked = set(chosen)
        rest = [i for i in range(len(rows)) if i not in picked]
        answers: list[Scored | None] = [None] * len(rows)
        canary = self._challenger([rows[i] for i in chosen], _take(lookup, chosen), fields)
        if canary is None:
            rest = list(range(len(rows)))
        else:
            for i, (p, d) in zip(chosen, canary, strict=True):
                answers[i] = Scored(p, d, self.challenger.version)
        scores = champion.probabilities([rows[i] for i in rest], _take(lookup, rest), fields)
        for i, answer in zip(rest, _answers(champion, scores), strict=True):
            answers[i] = answer
        return [a for a in answers if a is not None]

    def _challenger(
        self, rows: Sequence[Row], lookup: Lookup, fields: Sequence[str]
    ) -> list[tuple[float, bool]] | None:
        assert self.challenger is not None
        try:
            scored = self.challenger.probabilities(rows, lookup, fields)
        except Exception as error:
            logger.warning("challenger %s raised (%r): not used", self.challenger.version, error)
            return None
        return [(p, p >= self.challenger.threshold) for p in scored]


def _answers(scorer: Scorer, probabilities: list[float]) -> list[Scored]:
    return [Scored(p, p >= scorer.threshold, scorer.version) for p in probabilities]


def _take(lookup: Lookup, indexes: Sequence[int]) -> Lookup:
    return Lookup(
        {name: [column[i] for i in indexes] for name, column in lookup.values.items()},
        {view: [states[i] for i in indexes] for view, states in lookup.status.items()},
    )


def watches(settings: Settings) -> bool:
    """Whether a server follows the rollout plan: it serves the registry's champion, unpinned
    (a pinned or mounted artifact is the deployment's choice: KServe's canary is the
    cluster's, docs/rollout.md)."""
    return (
        settings.rollout_poll_s > 0
        and settings.model_path is None
        and settings.model_sha256 is None
        and settings.model_ref == "champion"
    )


class RolloutWatcher:
    """Follows the plan for one worker: ``load`` once at start-up, ``run`` on its loop."""

    def __init__(
        self,
        settings: Settings,
        compatible: Callable[[ServedModel], None],
        models: Models,
    ) -> None:
        self._settings = settings
        self._compatible = compatible
        """Raises ``ValueError`` when a version reads other features or fields."""
        self.models = models
        self._plan: RolloutPlan | None = None
        self._task: asyncio.Task[None] | None = None

    def load(self) -> Models:
        """The models the current plan names (at start-up: a restarted worker serves what the
        others do); the champion alone when there is no plan, or one that cannot be served
        (logged: a worker that raised here would be restarted for ever)."""
        try:
            plan = read_plan(self._settings.registry_dir, self._settings.model_name)
            if plan is not None:
                self.models, self._plan = self._models(plan), plan
        except Exception as error:
            logger.error("rollout plan not applied, serving the champion alone: %s", error)
        return self.models

    def start(self, swap: Callable[[Models], None]) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(swap))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self, swap: Callable[[Models], None]) -> None:
        while True:
            await asyncio.sleep(self._settings.rollout_poll_s)
            try:
                plan = read_plan(self._settings.registry_dir, self._settings.model_name)
                if plan is None or plan == self._plan:
                    continue
                self._plan = plan  # tried once: a plan that fails is not loaded every poll
                models = await asyncio.to_thread(self._models, plan)
            except Exception as error:
                logger.error("rollout plan not applied, serving as before: %s", error)
                continue
            self.models = models
            swap(models)
            logger.info(
                "rollout: serving %s %s%s",
                plan.model,
                plan.champion,
                f" with {plan.challenger} in {plan.mode}" if plan.challenger else "",
            )

    def _models(self, plan: RolloutPlan) -> Models:
        champion = self._scorer(plan.champion)
        if plan.challenger is None:
            return Models(champion)
        return Models(champion, self._scorer(plan.challenger), plan.mode, plan.share)

    def _scorer(self, version: str) -> Scorer:
        """The loaded scorer of ``version``: the one in use if it is, else loaded verified."""
        for scorer in (self.models.champion, self.models.challenger):
            if scorer is not None and scorer.version == version:
                return scorer
        served = resolve_model(self._settings.model_copy(update={"model_ref": version}))
        self._compatible(served)
        return Scorer.load(served)
