"""The on-demand views' transformations, read from a Feast registry file without Feast.

``online_plan`` takes the one piece of code a plan needs from the registry file on every load
(never from its cache, docs/decisions.md §11). Importing Feast costs seconds, so the registry's
protobuf is walked by field number to each ``UserDefinedFunctionV2.body``.
"""

from __future__ import annotations

from collections.abc import Iterator

# Field numbers of Feast's registry protos on the path to an on-demand view's transformation
# (``feast/protos/feast/core/{Registry,OnDemandFeatureView,Transformation}.proto``); a unit test
# holds them equal to the installed Feast's descriptors.
REGISTRY_ON_DEMAND_FEATURE_VIEWS = 8  # Registry.on_demand_feature_views
ON_DEMAND_SPEC = 1  # OnDemandFeatureView.spec
SPEC_NAME = 1  # OnDemandFeatureViewSpec.name
SPEC_PROJECT = 2  # OnDemandFeatureViewSpec.project
SPEC_FEATURE_TRANSFORMATION = 10  # OnDemandFeatureViewSpec.feature_transformation
TRANSFORMATION_USER_DEFINED_FUNCTION = 1  # FeatureTransformationV2.user_defined_function
UDF_BODY = 2  # UserDefinedFunctionV2.body


def registry_transformations(registry: bytes, project: str) -> dict[str, bytes]:
    """On-demand view name -> the ``body`` of its user-defined function, for ``project``'s views
    in a serialised Feast ``Registry`` proto (the registry file), read without Feast. Views with
    no body are left out. ``ValueError`` when the bytes are not a well-formed proto."""
    found: dict[str, bytes] = {}
    for view in _repeated(registry, REGISTRY_ON_DEMAND_FEATURE_VIEWS):
        spec = _message(view, ON_DEMAND_SPEC)
        if _string(spec, SPEC_PROJECT) != project:
            continue
        transformation = _message(spec, SPEC_FEATURE_TRANSFORMATION)
        udf = _message(transformation, TRANSFORMATION_USER_DEFINED_FUNCTION)
        body = _scalar(udf, UDF_BODY)
        if body:
            found[_string(spec, SPEC_NAME)] = body
    return found


def _fields(message: bytes) -> Iterator[tuple[int, bytes | None]]:
    """(field number, value) of each field of a serialised proto, in order; the value of a
    length-delimited field is its bytes, of any other wire type None (this reader needs none)."""
    view, end, at = memoryview(message), len(message), 0
    while at < end:
        tag, at = _varint(view, at)
        number, wire = tag >> 3, tag & 7
        value = None
        if wire == 0:
            _, at = _varint(view, at)
        elif wire == 1:
            at += 8
        elif wire == 2:
            length, at = _varint(view, at)
            value = bytes(view[at : at + length])
            at += length
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if at > end or number == 0:
            raise ValueError("malformed protobuf message")
        yield number, value


def _varint(view: memoryview, at: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(at, min(at + 10, len(view))):
        byte = view[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise ValueError("malformed protobuf varint")


def _repeated(message: bytes, number: int) -> Iterator[bytes]:
    return (value for n, value in _fields(message) if n == number and value is not None)


def _message(message: bytes, number: int) -> bytes:
    """A singular embedded message: its occurrences merged, as protobuf parsing merges them."""
    return b"".join(_repeated(message, number))


def _scalar(message: bytes, number: int) -> bytes:
    """A singular bytes field: the last occurrence wins, as in protobuf parsing."""
    last = b""
    for value in _repeated(message, number):
        last = value
    return last


def _string(message: bytes, number: int) -> str:
    return _scalar(message, number).decode()
