"""OIP v2 REST inference bodies: JSON or with the binary tensor data extension.

A request body may carry its JSON header followed by raw tensor bytes; the
``Inference-Header-Content-Length`` header says where the JSON ends, and each binary input names
its ``binary_data_size``. Outputs are sent as JSON ``data`` or, where the request asks
(``binary_data`` per output, ``binary_data_output`` for all), as raw bytes after the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from loopline.errors import BadRequest
from loopline.serving import oip


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"body is not valid JSON: {error}") from None


@dataclass(frozen=True, slots=True)
class InferRequest:
    request: dict[str, Any]
    tensors: list[oip.Tensor]

    @classmethod
    def parse(cls, body: bytes, header: bytes | None) -> InferRequest:
        """``header``: the ``Inference-Header-Content-Length`` value, if any."""
        cut = len(body)
        if header is not None:
            if not header.isdigit() or int(header) > len(body):
                raise BadRequest("Inference-Header-Content-Length does not fit the body")
            cut = int(header)
        request = parse_json(body[:cut])
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise BadRequest("inference request: expected an object with an 'inputs' array")
        return cls(request, _inputs(request, body[cut:]))

    def respond(
        self, model: str, version: str, tensors: list[oip.Tensor]
    ) -> tuple[bytes, bytes | None]:
        """The response body for the outputs asked for, and the value of its
        ``Inference-Header-Content-Length`` header when any output is binary."""
        requested, binary_outputs, binary_default = _requested_outputs(self.request)
        response: dict[str, Any] = {"model_name": model, "model_version": version}
        if isinstance(self.request.get("id"), str):
            response["id"] = self.request["id"]
        response["outputs"], tail = [], []
        for tensor in oip.select(tensors, requested):
            entry: dict[str, Any] = {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": tensor.shape,
            }
            if binary_outputs.get(tensor.name, binary_default):
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


def _inputs(request: dict[str, Any], binary: bytes) -> list[oip.Tensor]:
    tensors, offset = [], 0
    for i, item in enumerate(request["inputs"]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"inputs[{i}]: expected an object with a 'name'")
        name, datatype, shape = item["name"], item.get("datatype"), item.get("shape")
        if not isinstance(datatype, str) or not isinstance(shape, list):
            raise BadRequest(f"input {name!r}: 'datatype' and 'shape' are required")
        size = (item.get("parameters") or {}).get("binary_data_size")
        raw = None
        if size is not None:
            if not isinstance(size, int) or offset + size > len(binary):
                raise BadRequest(f"input {name!r}: binary_data_size does not fit the body")
            raw, offset = binary[offset : offset + size], offset + size
        elif "data" not in item:
            raise BadRequest(f"input {name!r}: 'data' is required")
        tensors.append(oip.decode(name, datatype, shape, item.get("data"), raw))
    return tensors


def _requested_outputs(request: dict[str, Any]) -> tuple[list[str], dict[str, bool], bool]:
    """Output names asked for, which of them are wanted in binary, and the default for the
    rest (the binary extension's ``binary_data`` and ``binary_data_output`` parameters)."""
    default = bool((request.get("parameters") or {}).get("binary_data_output", False))
    names, binary = [], {}
    for item in request.get("outputs") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest("outputs: expected objects with a 'name'")
        names.append(item["name"])
        binary[item["name"]] = bool((item.get("parameters") or {}).get("binary_data", default))
    return names, binary, default
