"""Per-request isolation in the inference core: rows that slip past validation and then cannot be
looked up, preprocessed or logged fail their own request with 400 naming the field; the other
requests of the micro-batch are served and logged, the failed ones are not logged."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from loopline.errors import BadRequest
from loopline.features.online import Lookup
from loopline.features.online_plan import OnlinePlan
from loopline.model.artifact import TrainedModel
from loopline.model.network import TabularNet, TabularNetConfig
from loopline.model.preprocessing import Preprocessor
from loopline.serving.core import InferenceCore, Outcome
from loopline.serving.metrics import ServingMetrics
from loopline.serving.rollout_state import Models
from loopline.serving.schema import InputSchema, Row, Submission
from loopline.serving.scorer import Scorer
from loopline.serving.served import ServedModel
from loopline.spec import load_spec

GOOD = {
    "origin": "EWR",
    "carrier": "UA",
    "tailnum": "N14228",
    "dest": "IAH",
    "sched_hour": 5,
    "weekday": 1,
    "distance": 1400.0,
}
AS_OF = 1377979200.0
POISON_LOOKUP = "explodes-in-the-store"


class Features:
    """The online-features interface the core uses; a row whose origin is ``POISON_LOOKUP``
    makes the read raise, as a value the store's key encoding cannot take would."""

    def __init__(self, plan: OnlinePlan) -> None:
        self.plan = plan
        self.feature_names = ["temp"]
        self.reads = 0

    def begin(self, rows: Sequence[Mapping[str, Any]], as_of: Sequence[float]) -> list[Any]:
        self.reads += 1
        if any(row["origin"] == POISON_LOOKUP for row in rows):
            raise TypeError("cannot serialise the entity key")
        return list(rows)

    async def finish(self, pending: list[Any]) -> Lookup:
        await asyncio.sleep(0)
        return Lookup({"temp": [55.0] * len(pending)}, {"origin_weather": ["fresh"] * len(pending)})

    async def lookup(self, rows: Sequence[Mapping[str, Any]], as_of: Sequence[float]) -> Lookup:
        return await self.finish(self.begin(rows, as_of))


class Log:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, lines: Sequence[bytes]) -> None:
        self.lines += lines


@pytest.fixture
def core(preprocessor: Preprocessor, plan: OnlinePlan, schema: InputSchema) -> InferenceCore:
    spec = load_spec("flight-delay")
    network = TabularNet(
        TabularNetConfig(
            vocabulary_sizes=preprocessor.vocabulary_sizes,
            numeric_width=preprocessor.numeric_width,
        )
    )
    served = ServedModel("flight-delay", "v1", "0" * 64, spec, Path("."))
    features: Any = Features(plan)
    log: Any = Log()
    model = TrainedModel(network, preprocessor)
    models = Models(Scorer(served, model))
    return InferenceCore(models, features, schema, log, ServingMetrics.create())


def row(client_id: str, as_of: float = AS_OF, **change: Any) -> Row:
    return Row({**GOOD, **change}, as_of, client_id)


def serve(core: InferenceCore, batch: list[Submission]) -> list[Outcome]:
    async def scenario() -> list[Outcome]:
        return core.complete(batch, await core.begin(batch))

    return asyncio.run(scenario())


def logged(core: InferenceCore) -> list[str]:
    log: Any = core._log
    return [orjson.loads(line)["id_value"] for line in log.lines]


POISONS = {
    "time beyond year 9999": (
        {"as_of": 253402351199.0 + 14 * 3600},
        "field 'event_timestamp' cannot be logged",
    ),
    "integer beyond 64 bits": ({"sched_hour": 10**20}, "field 'sched_hour' cannot be logged"),
    "number preprocessing cannot take": (
        {"distance": 10**400},
        "field 'distance' cannot be preprocessed",
    ),
    "key the store cannot take": (
        {"origin": POISON_LOOKUP},
        "field 'origin': the feature lookup failed on it",
    ),
}


@pytest.mark.parametrize("poison", POISONS)
def test_a_poisoned_request_fails_alone(core: InferenceCore, poison: str) -> None:
    change, message = POISONS[poison]
    good = [Submission([row(f"good-{i}")], "predict") for i in range(40)]
    poisoned = Submission([row("poisoned", **change)], "predict")
    batch = [*good[:20], poisoned, *good[20:]]
    outcomes = serve(core, batch)
    failure = outcomes[20]
    assert isinstance(failure, BadRequest)
    assert message in str(failure)
    answered = [o for i, o in enumerate(outcomes) if i != 20]
    assert all(isinstance(o, list) and len(o) == 1 for o in answered)
    assert sorted(logged(core)) == sorted(f"good-{i}" for i in range(40))


def test_a_request_fails_as_a_whole_and_names_its_row(core: InferenceCore) -> None:
    several = Submission([row("a"), row("b", sched_hour=10**20), row("c")], "predict_batch")
    single = Submission([row("d")], "v2_infer")
    outcomes = serve(core, [several, single])
    assert isinstance(outcomes[0], BadRequest)
    assert str(outcomes[0]).startswith("[1] field 'sched_hour'")
    assert isinstance(outcomes[1], list)
    assert logged(core) == ["d"]


def test_a_clean_batch_is_read_once_and_logged_whole(core: InferenceCore) -> None:
    outcomes = serve(core, [Submission([row(str(i))], "predict") for i in range(5)])
    assert all(isinstance(o, list) for o in outcomes)
    features: Any = core.features
    assert features.reads == 1
    assert logged(core) == [str(i) for i in range(5)]
