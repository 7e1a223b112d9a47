"""Rollout in a real ``loopline serve`` (two workers, registry-backed): the plan is picked up
without a restart, shadow never changes an answer, a reload under load drops nothing, and a
canary no better on live outcomes is rolled back by ``loopline rollout --evaluate``.

The challenger ``v2`` is the champion with its output layer negated: a real, verified artifact
(registered with its own sha256) whose probabilities are ``1 - p``, so clearly worse on the
live period's real outcomes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import torch
from prometheus_client import CollectorRegistry

from loopline.data.prepare import read_table
from loopline.model.artifact import REFERENCE_SAMPLE, load_model, save_model
from loopline.outcomes import build_outcome_sink
from loopline.predictions import read_segments
from loopline.registry import ModelRegistry
from loopline.registry.decisions import read_decisions
from loopline.registry.rollout import RolloutPlan, write_plan
from loopline.replay.timeline import outcomes
from loopline.serving.rollout_state import in_canary
from loopline.settings import Settings
from tests.conftest import TrainedSetup
from tests.integration.serving.conftest import ServingSetup
from tests.integration.serving.server import LOOPLINE, Server, start_server, wait_until

MODEL = "flight-delay"
pytestmark = pytest.mark.timeout(1200)  # the first test also trains the session's model
ROWS = 1200
"""The first live requests, sent per scenario (about a fifth delayed)."""


@dataclass
class Rollout:
    server: Server
    home: Path
    settings: Settings
    requests: list[dict[str, Any]]
    _probes: int = 0

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.settings.registry_dir)

    def plan(self, **fields: Any) -> None:
        write_plan(self.settings.registry_dir, RolloutPlan(model=MODEL, champion="v1", **fields))

    def predict(self, rows: list[dict[str, Any]], per_call: int = 100) -> list[dict[str, Any]]:
        """Answers to ``rows``, ``per_call`` a connection: the kernel spreads them over both
        workers."""
        with self.server.client(headers={"connection": "close"}) as client:
            return [
                answer
                for start in range(0, len(rows), per_call)
                for answer in _ok(
                    client.post("/predict_batch", json=rows[start : start + per_call])
                )
            ]

    def serves(self, share: float | None = None, shadow: bool = False) -> bool:
        """Whether every worker serves the champion alone, or with the shadow, or with a
        canary of ``share`` (each probe answered by the version its id's hash picks)."""
        for record in self.probed():
            canary = share is not None and in_canary(record.request_id, share)
            if record.model_version != ("v2" if canary else "v1"):
                return False
            if (record.shadow is not None) != shadow:
                return False
        return True

    def probed(self) -> list[Any]:
        """The log records of 20 new requests, one a connection (both workers, all but
        surely): what every worker serves now."""
        self._probes += 1
        rows = [
            {**r, "request_id": f"probe-{self._probes}-{k}"}
            for k, r in enumerate(self.requests[:20])
        ]
        answers = self.predict(rows, per_call=1)
        logged = _logged(self)
        return [logged[a["request_id"]] for a in answers]

    def cli(self, *arguments: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        env = {**self.server.env, "LOOPLINE_ROLLOUT_MIN_LABELLED": "150", **(env or {})}
        result = subprocess.run(
            [str(LOOPLINE), "rollout", *arguments, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer


def _ok(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    answer: list[dict[str, Any]] = response.json()
    return answer


def _inverted_challenger(registry: ModelRegistry, workdir: Path) -> None:
    """Register ``v2``: ``v1`` with the output layer's weights and bias negated."""
    champion = registry.get(MODEL, "champion")
    model = load_model(champion.path, champion.registered_sha256)
    last = model.network.mlp[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.neg_()
        last.bias.neg_()
    reference = pd.read_parquet(champion.path / REFERENCE_SAMPLE)
    sha256 = save_model(model, reference, workdir / "inverted")
    lineage = champion.lineage.model_copy(update={"artifact_sha256": sha256})
    registry.register(MODEL, workdir / "inverted", lineage)
    registry.set_alias(MODEL, "challenger", "v2")


@pytest.fixture(scope="module")
def rollout(
    trained: TrainedSetup, serving: ServingSetup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rollout]:
    root = tmp_path_factory.mktemp("rollout")
    home = root / "home"
    shutil.copytree(trained.settings.registry_dir, home / "registry")
    registry = ModelRegistry(home / "registry")
    _inverted_challenger(registry, root)
    live = read_table(trained.settings, "requests")
    live = live[live["split"] == "live"].sort_values("event_timestamp")
    columns = [
        "flight_id",
        "event_timestamp",
        *trained.spec.entity_keys,
        *trained.spec.request_fields,
    ]
    rows = live[list(dict.fromkeys(columns))].head(ROWS).to_dict("records")
    requests = [{**r, "event_timestamp": r["event_timestamp"].isoformat()} for r in rows]
    env = serving.env(LOOPLINE_HOME=str(home), LOOPLINE_MODEL_NAME=MODEL)
    env.pop("LOOPLINE_MODEL_PATH")
    server = start_server(root / "server", env, workers=2)
    settings = Settings(home=home, prediction_log_dir=server.log_dir)
    yield Rollout(server, home, settings, requests)
    server.stop()


@pytest.fixture
def champion_alone(rollout: Rollout) -> Rollout:
    """Each test starts from the champion alone (v2 still the challenger alias)."""
    rollout.registry.set_alias(MODEL, "challenger", "v2")
    rollout.plan()
    wait_until(rollout.serves, 30, "the champion alone")
    return rollout


def _logged(rollout: Rollout) -> dict[str, Any]:
    return {r.request_id: r for r in read_segments(rollout.server.log_dir)}


def test_a_shadow_never_changes_an_answer_and_is_logged_beside_it(champion_alone: Rollout) -> None:
    rollout = champion_alone
    named = [{**r, "request_id": f"alone-{i}"} for i, r in enumerate(rollout.requests[:300])]
    alone = rollout.predict(named)
    rollout.plan(challenger="v2", mode="shadow")
    wait_until(lambda: rollout.serves(shadow=True), 30, "both workers in shadow")
    again = rollout.predict([{**r, "request_id": f"shadow-{i}"} for i, r in enumerate(named)])
    assert [a["probability"] for a in again] == [a["probability"] for a in alone]
    assert {a["model_version"] for a in again} == {"v1"}
    wait_until(lambda: f"shadow-{len(named) - 1}" in _logged(rollout), 10, "the log")
    logged = _logged(rollout)
    for i, answer in enumerate(again):
        record = logged[f"shadow-{i}"]
        assert record.model_version == "v1"
        assert record.probability == answer["probability"]
        assert record.shadow is not None
        assert record.shadow.version == "v2"
        assert record.shadow.probability == pytest.approx(1 - answer["probability"], abs=1e-5)
        assert record.latency_ms is not None
        assert record.latency_ms > 0
        assert logged[f"alone-{i}"].shadow is None


def test_a_canary_is_sticky_per_request_id(champion_alone: Rollout) -> None:
    rollout = champion_alone
    rollout.plan(challenger="v2", mode="canary", share=0.5)
    wait_until(lambda: rollout.serves(share=0.5), 30, "the canary")
    named = [{**r, "request_id": f"sticky-{i}"} for i, r in enumerate(rollout.requests[:400])]
    first = [a["model_version"] for a in rollout.predict(named)]
    second = [a["model_version"] for a in rollout.predict(named)]
    assert first == second  # on whichever worker, in whichever batch
    assert 0.4 < first.count("v2") / len(first) < 0.6


def test_a_reload_under_load_drops_no_request_and_loses_no_record(champion_alone: Rollout) -> None:
    rollout = champion_alone
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with rollout.server.client(headers={"connection": "close"}) as client:
            n = 0
            while not stop.is_set():
                n += 1
                body = [
                    {
                        **rollout.requests[(n * 10 + k) % len(rollout.requests)],
                        "request_id": f"load-{worker}-{n}-{k}",
                    }
                    for k in range(10)
                ]
                response = client.post("/predict_batch", json=body)
                if response.status_code == 200:
                    answers.extend(response.json())
                else:
                    failures.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(answers) > 500, 30, "load")
        rollout.plan(challenger="v2", mode="canary", share=0.5)
        wait_until(lambda: any(a["model_version"] == "v2" for a in answers[-200:]), 20, "canary")
        rollout.plan()  # and back, under load
        mark = len(answers)
        wait_until(
            lambda: (
                len(answers) > mark + 500
                and all(a["model_version"] == "v1" for a in answers[-200:])
            ),
            30,
            "the champion alone again",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    ids = [a["request_id"] for a in answers]
    wait_until(lambda: set(ids) <= set(_logged(rollout)), 15, "every answer in the log")
    logged = _logged(rollout)
    for answer in answers:
        assert logged[answer["request_id"]].model_version == answer["model_version"]
    versions = Counter(a["model_version"] for a in answers)
    assert versions["v1"] > 0, versions
    assert versions["v2"] > 0, versions


def test_a_canary_no_better_is_rolled_back_and_the_champion_keeps_serving(
    champion_alone: Rollout, trained: TrainedSetup
) -> None:
    rollout = champion_alone
    started = rollout.cli("--mode", "canary", "--share", "0.5")
    assert (started["action"], started["canary_percent"]) == ("started", 50)
    wait_until(lambda: rollout.serves(share=0.5), 30, "the canary")
    answered = rollout.predict(
        [{**r, "request_id": f"canary-{i}"} for i, r in enumerate(rollout.requests)]
    )
    assert Counter(a["model_version"] for a in answered)["v2"] > 400
    wait_until(lambda: f"canary-{len(answered) - 1}" in _logged(rollout), 10, "the log")
    # The live outcomes of those flights, joined to the log as the ingest process does.
    known = read_table(trained.settings, "outcomes")
    flights = {r["flight_id"] for r in rollout.requests}
    join = build_outcome_sink(rollout.settings, CollectorRegistry(), trained.spec)
    join.handle(list(outcomes(known[known["flight_id"].isin(flights)])))
    join.close()
    # The session's fast champion is close to random on these live rows (their features are
    # stale: history is materialized up to the live period), so the inverted one is worse by
    # a few points of AUC only: more than 600 labelled rows each cannot tell them apart at 95%,
    # and the cap on an undecided rollout is what rolls it back here. The rule's "clearly
    # worse" branch is tested on generated data (tests/unit/rollout).
    decided = rollout.cli("--evaluate", env={"LOOPLINE_ROLLOUT_MAX_LABELLED": "500"})
    assert decided["action"] == "rolled-back", decided["decision"]["reasons"]
    figures = decided["decision"]["figures"]
    assert figures["challenger_labelled"] >= 500
    assert figures["auc_difference_low"] < 0
    assert "ROC AUC difference" in decided["decision"]["reasons"][0]
    assert "challenger" not in rollout.registry.aliases(MODEL)
    assert rollout.registry.aliases(MODEL)["champion"] == "v1"
    wait_until(rollout.serves, 30, "the champion alone")
    kinds = [(d.kind, d.outcome) for d in read_decisions(rollout.settings.registry_dir, MODEL)]
    assert kinds[-2:] == [("rollout", "started"), ("rollout", "rolled-back")]
