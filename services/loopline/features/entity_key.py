"""Feast's entity key serialisation (version 3, ``feast.infra.key_encoding_utils``), without
Feast: the online stores' row keys, built per distinct key on the serving path. A test holds it
equal to Feast's own (``tests/integration/serving/test_online_features.py``)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.features.online_plan import FieldType

_VALUE_TYPE = {"string": 2, "int64": 4}  # feast.value_type.ValueType numbers in serialised keys


def serialize_entity_key(
    join_keys: Sequence[tuple[str, FieldType]], values: Sequence[Any]
) -> bytes:
    """Feast's entity key serialisation, version 3 (``feast.infra.key_encoding_utils``)."""
    parts = [struct.pack("<I", len(join_keys))]
    for name, _ in join_keys:
        encoded = name.encode()
        parts += [struct.pack("<II", _VALUE_TYPE["string"], len(encoded)), encoded]
    for (_, kind), value in zip(join_keys, values, strict=True):
        data = str(value).encode() if kind == "string" else struct.pack("<q", int(value))
        parts += [struct.pack("<II", _VALUE_TYPE.get(kind, 4), len(data)), data]
    return b"".join(parts)
