"""What the BentoML service needs from Loopline beyond the predictor: a Bento's start-up, and
the routes its schema lists.

``bentoml serve loopline:latest`` imports the service inside the Bento (its ``src``), and each
worker runs there, but the state a server reads (the registry, the feature repo's registry and
online store, the prediction log) lives where ``make demo`` left it: the directory the server
is started from, as for ``loopline serve``. ``prepare`` runs once in BentoML's arbiter before any
worker starts, still in that directory, and hands the workers absolute paths and the model the
Bento packaged; then it checks what would make every worker fail, so a server that cannot serve
exits with that error instead of restarting its workers for ever.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
from bentoml import Bento
from bentoml.exceptions import BentoMLException

from loopline.errors import LooplineError
from loopline.features.online_plan import load_plan
from loopline.registry.bento import settings_version
from loopline.serving.bento_schema import inference_routes
from loopline.serving.schema import InputSchema, Limits
from loopline.serving.served import preflight
from loopline.settings import ENV_PREFIX, Settings, load_settings
from loopline.spec import ModelSpec

PATH_SETTINGS = ("home", "feature_repo", "model_path", "prediction_log_dir")
"""Settings that are paths: relative ones are resolved against the directory ``prepare`` runs
in, before the workers change to the Bento's."""


def prepare(bento: Bento | None) -> None:
    """Before the workers start (``@bentoml.on_deployment``): pin the path settings, point
    ``LOOPLINE_MODEL_PATH`` at the model a Bento packaged unless it is set (KServe's
    ``/mnt/models``), and check the result (``served.preflight``). The workers inherit the
    environment."""
    settings = load_settings()
    for name in PATH_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"{ENV_PREFIX}{name.upper()}"] = str(value.absolute())
    packaged = bento.info.all_models if bento is not None else []
    if packaged and settings.model_path is None:
        (model,) = packaged  # the one the service declares (``RegistryModel``)
        os.environ[f"{ENV_PREFIX}MODEL_PATH"] = bentoml.models.get(model.tag).path
    try:
        preflight(load_settings())
    except LooplineError as error:
        raise NotServable(str(error)) from None


class NotServable(LooplineError, BentoMLException):
    """What stops a server before its workers start: ``loopline`` and ``bentoml`` both print it
    as one line (``bentoml serve``: "`serve` failed: ...") and exit."""

    def __init__(self, message: str) -> None:
        BentoMLException.__init__(self, message)


def schema_routes(settings: Settings) -> list[dict[str, Any]]:
    """The inference routes of the version the settings name, typed as its feature plan says
    (at ``bentoml build``: the version it packages)."""
    version = settings_version(settings)
    spec = ModelSpec.model_validate(version.lineage.spec)
    plan = load_plan(settings, spec.feature_service)
    schema = InputSchema.build(spec, plan, Limits.of(settings))
    return inference_routes(version.name, schema, [view.name for view in plan.views])
