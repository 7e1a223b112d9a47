"""The predictor's HTTP routes, in one table: ``http`` dispatches on it and ``openapi`` documents
it, so a route cannot be served undocumented (or documented and not served).

A route's ``path`` is its OpenAPI template; ``{MODEL_NAME}`` and ``{MODEL_VERSION}`` (the OIP
spec's names) match one raw path segment each, decoded after matching (``%2f`` is not a
separator). A ``GET`` route answers ``HEAD`` too. Adding a route is a line here, its handler in
``http`` (``PredictorApp`` refuses to start without one) and its description in ``openapi``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

MODEL_NAME, MODEL_VERSION = "MODEL_NAME", "MODEL_VERSION"
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    """``POST`` or ``GET``."""
    operation: str
    """The OpenAPI ``operationId``; names the handler and the description."""
    endpoint: str
    """The ``endpoint`` label of the request metrics."""
    protected: bool = False
    """Needs the bearer token, when one is configured."""

    @cached_property
    def parameters(self) -> tuple[str, ...]:
        return tuple(_PARAMETER.findall(self.path))

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """Matches a raw path; one group per parameter."""
        literals = _PARAMETER.split(self.path)[::2]  # split keeps the names at odd indices
        return re.compile("([^/]+)".join(re.escape(literal) for literal in literals))


_MODEL = f"/v2/models/{{{MODEL_NAME}}}"
_VERSION = f"{_MODEL}/versions/{{{MODEL_VERSION}}}"

ROUTES = (
    Route("/predict", "POST", "predict", "predict", protected=True),
    Route("/predict_batch", "POST", "predict_batch", "predict_batch", protected=True),
    Route("/v2/health/live", "GET", "server_live", "v2_health"),
    Route("/v2/health/ready", "GET", "server_ready", "v2_health"),
    Route("/v2", "GET", "server_metadata", "v2_metadata", protected=True),
    Route("/v2/", "GET", "server_metadata_slash", "v2_metadata", protected=True),
    Route(_MODEL, "GET", "model_metadata", "v2_metadata", protected=True),
    Route(_VERSION, "GET", "model_version_metadata", "v2_metadata", protected=True),
    Route(f"{_MODEL}/ready", "GET", "model_ready", "v2_health"),
    Route(f"{_VERSION}/ready", "GET", "model_version_ready", "v2_health"),
    Route(f"{_MODEL}/infer", "POST", "model_infer", "v2_infer", protected=True),
    Route(f"{_VERSION}/infer", "POST", "model_version_infer", "v2_infer", protected=True),
    Route("/events", "POST", "post_events", "events", protected=True),
    Route("/metrics", "GET", "metrics", "metrics"),
    Route("/openapi.json", "GET", "openapi", "docs"),
    Route("/docs", "GET", "docs", "docs"),
)

BENTOML_PATHS = ("/", "/livez", "/healthz", "/readyz", "/schema.json", "/docs.json")
"""Paths BentoML answers (its health probes, its own UI and documents)."""
BENTOML_PREFIXES = ("/assets/", "/static_content/")
