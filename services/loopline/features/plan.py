"""What ``feast apply`` would change in the registry, per object, from Feast's own objects.

``feast plan`` (Feast 0.67) lists every feature view as "Updated" after an apply that changed
nothing: it compares each view's spec with the registry's, and the spec embeds the view's batch
(and stream) source *including its ``meta``*, the creation and update times Feast stamps on each
apply; the views' ``entity_columns`` and on-demand views' ``sources`` differ the same way. So a
plan here compares the same objects Feast would apply (the repo parsed by Feast and completed
by Feast's inference, as ``feast plan`` does) with the registry's, by their protos' specs with
every embedded ``meta`` and timestamp cleared, and a transformation compared by its source, as
Feast's diff compares it: an unchanged repo plans no change, and an edit to a definition is
still an update, naming the spec fields it touches.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel

from loopline.features.store import definitions_importable, feature_store, repo_config
from loopline.settings import Settings

Change = Literal["created", "updated", "deleted", "unchanged"]
_HIDDEN = {"__dummy"}  # Feast's placeholder entity for entity-less views; its CLI hides it too


class ObjectPlan(BaseModel):
    kind: str
    """Feast's name for the object's type: ``feature view``, ``entity``, ``data source`` ..."""
    name: str
    change: Change
    fields: list[str] = []
    """For an update: the spec fields that differ (e.g. ``ttl``, ``features``)."""


class FeaturePlan(BaseModel):
    """``loopline features plan --json`` and ``features apply --json`` print this."""

    project: str
    online_store: str
    objects: list[ObjectPlan]

    @property
    def changed(self) -> bool:
        return any(item.change != "unchanged" for item in self.objects)

    def summary(self) -> dict[Change, int]:
        counts: dict[Change, int] = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0}
        for item in self.objects:
            counts[item.change] += 1
        return counts


def plan(settings: Settings) -> FeaturePlan:
    """Compare the repo's definitions with the registry; nothing is written."""
    from feast.infra.registry.registry import FEAST_OBJECT_TYPES, FeastObjectType
    from feast.repo_operations import _get_repo_contents

    config = repo_config(settings)
    store = feature_store(settings)
    with definitions_importable(settings) as repo, contextlib.redirect_stdout(io.StringIO()):
        contents = _get_repo_contents(repo, config.project, config)
        store._make_inferences(  # what `feast plan` and `feast apply` run first
            contents.data_sources,
            contents.entities,
            contents.feature_views,
            contents.on_demand_feature_views,
            contents.stream_feature_views,
            contents.feature_services,
            contents.label_views,
        )
    registered = FeastObjectType.get_objects_from_registry(store.registry, config.project)
    declared = FeastObjectType.get_objects_from_repo_contents(contents)
    objects = [
        item
        for kind in FEAST_OBJECT_TYPES
        for item in _compare(kind.value, registered[kind], declared[kind])
        if item.name not in _HIDDEN
    ]
    return FeaturePlan(
        project=config.project, online_store=config.online_store.type, objects=objects
    )


def _compare(kind: str, registered: list[Any], declared: list[Any]) -> Iterator[ObjectPlan]:
    current = {item.name: item for item in registered if item.name}
    for item in declared:
        if not item.name:
            continue
        before = current.pop(item.name, None)
        if before is None:
            yield ObjectPlan(kind=kind, name=item.name, change="created")
            continue
        fields = _differing_fields(_spec(before), _spec(item))
        change: Change = "updated" if fields else "unchanged"
        yield ObjectPlan(kind=kind, name=item.name, change=change, fields=fields)
    for name in current:
        yield ObjectPlan(kind=kind, name=name, change="deleted")


def _spec(item: Any) -> Any:
    """The object's spec proto (a data source has none: the whole proto), without ``project``
    and what Feast rewrites on every apply (``_clear_meta``)."""
    proto = item.to_proto()
    spec = proto.spec if "spec" in proto.DESCRIPTOR.fields_by_name else proto
    if "project" in spec.DESCRIPTOR.fields_by_name:
        spec.ClearField("project")
    _clear_meta(spec)
    return spec


_STAMPS = ("meta", "created_timestamp", "last_updated_timestamp")
"""Fields Feast sets on every apply: a data source's ``meta``, a request source's times."""


def _clear_meta(message: Any) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    for name in _STAMPS:
        if name in fields and fields[name].message_type is not None:
            message.ClearField(name)
    if "body" in fields and "body_text" in fields:
        # A transformation's dill bytes depend on where it was pickled; Feast's own diff skips
        # them too and compares the source (``body_text``).
        message.ClearField("body")
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:  # e.g. an on-demand view's sources
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            children = list(value.values())
        else:
            children = list(value) if field.is_repeated else [value]
        for child in children:
            _clear_meta(child)


def _differing_fields(before: Any, after: Any) -> list[str]:
    return [
        field.name
        for field in before.DESCRIPTOR.fields
        if getattr(before, field.name) != getattr(after, field.name)
    ]
