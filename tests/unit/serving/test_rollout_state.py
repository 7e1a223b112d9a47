"""Champion and challenger in one batch: a shadow never changes an answer, a canary answers the
request ids its hash picks (the same ones every time), and a challenger that raises fails
nothing. Networks with random weights (two seeds): what matters is which one answered."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from loopline.features.online import Lookup
from loopline.model.artifact import TrainedModel
from loopline.model.network import TabularNet, TabularNetConfig
from loopline.model.preprocessing import Preprocessor
from loopline.serving.rollout_state import Models, in_canary
from loopline.serving.schema import InputSchema, Row
from loopline.serving.scorer import Scorer
from loopline.serving.served import ServedModel
from loopline.spec import load_spec
from tests.unit.serving.test_isolation import AS_OF, GOOD

ROWS = [Row({**GOOD, "sched_hour": h % 24, "distance": 100.0 * h}, AS_OF, None) for h in range(40)]
IDS = [f"request-{i}" for i in range(len(ROWS))]
LOOKUP = Lookup({"temp": [50.0 + i for i in range(40)]}, {"origin_weather": ["fresh"] * 40})


def scorer(
    preprocessor: Preprocessor, version: str, seed: int, kind: type[Scorer] = Scorer
) -> Scorer:
    torch.manual_seed(seed)
    config = TabularNetConfig(
        vocabulary_sizes=preprocessor.vocabulary_sizes, numeric_width=preprocessor.numeric_width
    )
    served = ServedModel("flight-delay", version, "0" * 64, load_spec("flight-delay"), Path("."))
    return kind(served, TrainedModel(TabularNet(config), preprocessor))


class Raising(Scorer):
    def probabilities(
        self, rows: Sequence[Row], lookup: Lookup, fields: Sequence[str]
    ) -> list[float]:
        raise ValueError("a challenger that cannot score")


@pytest.fixture
def two(preprocessor: Preprocessor) -> tuple[Scorer, Scorer]:
    return scorer(preprocessor, "v1", 1), scorer(preprocessor, "v2", 2)


def test_the_canary_hash_is_stable_and_takes_its_share() -> None:
    ids = [f"id-{i}" for i in range(20000)]
    picked = [in_canary(i, 0.25) for i in ids]
    assert picked == [in_canary(i, 0.25) for i in ids]
    assert abs(sum(picked) / len(ids) - 0.25) < 0.015
    assert not any(in_canary(i, 0.0) for i in ids[:1000])
    assert all(in_canary(i, 1.0) for i in ids[:1000])
    assert all(in_canary(i, 0.5) for i in ids if in_canary(i, 0.25))  # a share grows by adding


def test_a_shadow_answers_as_the_champion_alone_and_carries_the_challenger(
    two: tuple[Scorer, Scorer], schema: InputSchema
) -> None:
    champion, challenger = two
    fields = list(schema.fields)
    alone = Models(champion).score(ROWS, LOOKUP, IDS, fields)
    shadowed = Models(champion, challenger, "shadow").score(ROWS, LOOKUP, IDS, fields)
    assert [(a.probability, a.decision, a.version) for a in shadowed] == [
        (a.probability, a.decision, a.version) for a in alone
    ]
    theirs = challenger.probabilities(ROWS, LOOKUP, fields)
    assert [a.shadow.probability for a in shadowed if a.shadow] == theirs
    assert theirs != [a.probability for a in alone]
    assert {a.shadow.version for a in shadowed if a.shadow} == {"v2"}


def test_a_canary_answers_the_ids_its_hash_picks_with_its_own_scores(
    two: tuple[Scorer, Scorer], schema: InputSchema
) -> None:
    champion, challenger = two
    fields = list(schema.fields)
    answers = Models(champion, challenger, "canary", 0.5).score(ROWS, LOOKUP, IDS, fields)
    mine = champion.probabilities(ROWS, LOOKUP, fields)
    theirs = challenger.probabilities(ROWS, LOOKUP, fields)
    for i, answer in enumerate(answers):
        chosen = in_canary(IDS[i], 0.5)
        assert answer.version == ("v2" if chosen else "v1")
        assert answer.probability == pytest.approx((theirs if chosen else mine)[i], abs=1e-6)
        assert answer.shadow is None
    assert {a.version for a in answers} == {"v1", "v2"}


@pytest.mark.parametrize("mode", ["shadow", "canary"])
def test_a_challenger_that_raises_fails_no_request(
    two: tuple[Scorer, Scorer], schema: InputSchema, preprocessor: Preprocessor, mode: str
) -> None:
    champion, _ = two
    broken = scorer(preprocessor, "v2", 2, Raising)
    fields = list(schema.fields)
    alone = Models(champion).score(ROWS, LOOKUP, IDS, fields)
    answers = Models(champion, broken, mode, 1.0).score(ROWS, LOOKUP, IDS, fields)  # type: ignore[arg-type]
    assert answers == alone
