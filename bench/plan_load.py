"""Warm start of the feature plan: ``load_plan`` (cache hit) and ``OnlineFeatures`` timed in a
fresh process, then ``load_plan`` repeated 200 times. Run after ``make demo`` (a registry and a
plan cache exist), from the repository root, with the ``LOOPLINE_*`` settings of the server:

    .venv/bin/python bench/plan_load.py [feature_service]

The first call in a fresh process is what a worker pays at start-up (docs/decisions.md §11)."""

import json
import statistics
import sys
import time

from loopline.features.online import OnlineFeatures
from loopline.features.online_plan import load_plan
from loopline.settings import load_settings

service = sys.argv[1] if len(sys.argv) > 1 else "flight_delay_v1"
settings = load_settings()
started = time.perf_counter()
plan = load_plan(settings, service)
first = time.perf_counter() - started
started = time.perf_counter()
OnlineFeatures(plan, settings).close()
readers = time.perf_counter() - started
repeats = []
for _ in range(200):
    started = time.perf_counter()
    load_plan(settings, service)
    repeats.append(time.perf_counter() - started)
print(
    json.dumps(
        {
            "first_load_plan_ms": round(first * 1e3, 2),
            "online_features_ms": round(readers * 1e3, 2),
            "load_plan_median_ms": round(statistics.median(repeats) * 1e3, 2),
        }
    )
)
