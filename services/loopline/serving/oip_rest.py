"""OIP v2 REST inference bodies: JSON or with the binary tensor data extension.

A request body may carry its JSON header followed by raw tensor bytes; the
``Inference-Header-Content-Length`` header says where the JSON ends, and each binary input names
its ``binary_data_size``. Outputs are sent as JSON ``data`` or, where the request asks
(``binary_data`` per output, ``binary_data_output`` for all), as raw bytes after the JSON.

The whole request is validated by ``parse``, before it is served: every field the spec types
(``id`` a string, ``parameters`` an object, ``outputs`` an array of named objects), binary sizes
that are non-negative integers and account for every byte after the header, and no input given
both as ``data`` and as binary. The ``id``, when given, names the request's predictions (their
``request_id``, in the answer and the prediction log; ``schema.check_request_id`` bounds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from loopline.errors import BadRequest, brief
from loopline.serving import jsonbody, oip
from loopline.serving.schema import Limits, check_request_id


@dataclass(frozen=True, slots=True)
class InferRequest:
    request: dict[str, Any]
    request_id: str | None
    """The request's ``id``, which names its predictions (``schema.columns_to_rows``)."""
    tensors: list[oip.Tensor]
    requested: list[str]
    """Output names asked for, in order (none: all)."""
    binary: dict[str, bool]
    """Per output asked for: whether it is sent as binary."""
    binary_default: bool

    @classmethod
    def parse(
        cls, body: bytes, header: bytes | None, limits: Limits, views: Sequence[str]
    ) -> InferRequest:
        """``header``: the ``Inference-Header-Content-Length`` value, if any; ``views``: the
        feature views (their ``status_<view>`` outputs may be asked for)."""
        cut = len(body)
        if header is not None:
            if not header.isdigit() or len(header) > 12 or int(header) > len(body):
                raise BadRequest("Inference-Header-Content-Length does not fit the body")
            cut = int(header)
        request = jsonbody.loads(body[:cut])
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise BadRequest("inference request: expected an object with an 'inputs' array")
        given = request.get("id")
        request_id = check_request_id(None if given == "" else given, "id", limits)
        parameters = _parameters(request, "parameters")
        binary_default = _flag(parameters, "binary_data_output", "parameters", False)
        requested, binary = _outputs(request.get("outputs"), binary_default)
        oip.check_outputs(requested, views)
        tensors = _inputs(request["inputs"], body[cut:], limits.rows)
        return cls(request, request_id, tensors, requested, binary, binary_default)

    def respond(
        self, model: str, version: str, tensors: list[oip.Tensor]
    ) -> tuple[bytes, bytes | None]:
        """The response body for the outputs asked for, and the value of its
        ``Inference-Header-Content-Length`` header when any output is binary."""
        response: dict[str, Any] = {"model_name": model, "model_version": version}
        if isinstance(self.request.get("id"), str):
            response["id"] = self.request["id"]
        response["outputs"], tail = [], []
        for tensor in oip.select(tensors, self.requested):
            entry: dict[str, Any] = {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": tensor.shape,
            }
            if self.binary.get(tensor.name, self.binary_default):
                data = oip.raw(tensor)
                entry["parameters"] = {"binary_data_size": len(data)}
                tail.append(data)
            else:
                entry["data"] = tensor.values
            response["outputs"].append(entry)
        head = orjson.dumps(response)
        if not tail:
            return head, None
        return head + b"".join(tail), b"%d" % len(head)


def _inputs(items: list[Any], binary: bytes, max_rows: int) -> list[oip.Tensor]:
    tensors, offset = [], 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"inputs[{i}]: expected an object with a 'name'")
        name, datatype, shape = item["name"], item.get("datatype"), item.get("shape")
        label = f"input {brief(name)}"
        if not isinstance(datatype, str) or not isinstance(shape, list):
            raise BadRequest(f"{label}: 'datatype' and 'shape' are required")
        size = _parameters(item, label).get("binary_data_size")
        raw = None
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise BadRequest(f"{label}: binary_data_size {brief(size)} does not fit the body")
            if "data" in item:
                raise BadRequest(f"{label}: both 'data' and binary_data_size")
            raw, offset = binary[offset : offset + size], offset + size
        elif "data" not in item:
            raise BadRequest(f"{label}: 'data' is required")
        tensors.append(oip.decode(name, datatype, shape, item.get("data"), raw, max_rows))
    if offset != len(binary):
        raise BadRequest(f"body: {len(binary) - offset} bytes of binary data no input reads")
    return tensors


def _outputs(items: object, default: bool) -> tuple[list[str], dict[str, bool]]:
    """Output names asked for, and which of them are wanted in binary (the binary extension's
    ``binary_data`` per output, ``binary_data_output`` the default)."""
    if items is None:
        return [], {}
    if not isinstance(items, list):
        raise BadRequest(f"outputs: expected an array, got {brief(items)}")
    names, binary = [], {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"outputs[{i}]: expected an object with a 'name'")
        label = f"output {brief(item['name'])}"
        names.append(item["name"])
        binary[item["name"]] = _flag(_parameters(item, label), "binary_data", label, default)
    return names, binary


def _parameters(owner: dict[str, Any], label: str) -> dict[str, Any]:
    """An OIP ``parameters`` object (absent or null: none)."""
    parameters = owner.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        where = "parameters" if label == "parameters" else f"{label}: parameters"
        raise BadRequest(f"{where}: expected an object, got {brief(parameters)}")
    return parameters


def _flag(parameters: dict[str, Any], name: str, label: str, default: bool) -> bool:
    value = parameters.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{label}: {name} must be true or false, got {brief(value)}")
    return value
