"""OIP calls with unmodified client libraries, run as a script that prints JSON.

``python clients.py triton|kserve|kserve-rest ADDRESS CALL '{"inputs": {...}, "token": ...}'``

tritonclient.grpc and kserve register the same protobuf message names, so they cannot share an
interpreter: each call runs in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

DATATYPES = {str: ("BYTES", object), int: ("INT64", np.int64), float: ("FP64", np.float64)}
MODEL = "flight-delay"


def arrays(inputs: dict[str, list[Any]]) -> list[tuple[str, str, np.ndarray]]:
    result = []
    for name, values in inputs.items():
        datatype, dtype = DATATYPES[type(values[0])]
        result.append((name, datatype, np.array(values, dtype=dtype)))
    return result


def triton(address: str, call: str, arguments: dict[str, Any]) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(address)
    headers = {"authorization": f"Bearer {arguments['token']}"} if arguments.get("token") else None
    try:
        if call == "health":
            return {
                "live": client.is_server_live(),
                "ready": client.is_server_ready(),
                "model_ready": client.is_model_ready(MODEL),
            }
        if call == "metadata":
            metadata = client.get_model_metadata(arguments.get("model", MODEL), headers=headers)
            return {"inputs": [[t.name, t.datatype, list(t.shape)] for t in metadata.inputs]}
        inputs = []
        for name, datatype, array in arrays(arguments["inputs"]):
            tensor = grpcclient.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = client.infer(
            arguments.get("model", MODEL),
            inputs,
            headers=headers,
            request_id=arguments.get("request_id", ""),
        )
        return {
            "id": result.get_response().id,
            "model_version": result.get_response().model_version,
            "probability": result.as_numpy("probability").tolist(),
            "request_id": [b.decode() for b in result.as_numpy("request_id")],
        }
    except InferenceServerException as error:
        return {"error": error.status(), "message": error.message()}


def kserve(address: str, call: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """``InferenceGRPCClient`` (address ``host:port``) or ``InferenceRESTClient`` (a URL)."""
    from kserve import (
        InferenceGRPCClient,
        InferenceRESTClient,
        InferInput,
        InferRequest,
        RESTConfig,
    )

    async def infer() -> dict[str, Any]:
        inputs = []
        for name, datatype, array in arrays(arguments["inputs"]):
            tensor = InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        request = InferRequest(model_name=MODEL, infer_inputs=inputs)
        if call == "infer-rest":
            rest = InferenceRESTClient(RESTConfig(protocol="v2"))
            try:
                response = await rest.infer(address, request, model_name=MODEL)
                ready = await rest.is_model_ready(address, MODEL)
            finally:
                await rest.close()
        else:
            grpc_client = InferenceGRPCClient(address)
            try:
                response = await grpc_client.infer(request)
                ready = await grpc_client.is_model_ready(MODEL)
            finally:
                await grpc_client.close()
        outputs = {o.name: o.as_numpy().tolist() for o in response.outputs}
        return {
            "model_version": response.model_version,
            "probability": outputs["probability"],
            "ready": ready,
        }

    return asyncio.run(infer())


if __name__ == "__main__":
    library, address, call, raw = sys.argv[1:5]
    handler = triton if library == "triton" else kserve
    print(json.dumps(handler(address, call, json.loads(raw))))
