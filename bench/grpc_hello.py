"""The gRPC baseline: OIP ``ModelInfer`` answered with a fixed response, on the predictor's gRPC
server set-up (grpcio's threaded server, same thread count), with nothing else in the process.
It measures what Python gRPC itself allows on these cores, for the predictor's gRPC figures.

    python bench/grpc_hello.py --port 8081
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from loopline.serving.grpc_server import SERVICE, THREADS, pb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    response = pb.ModelInferResponse(model_name="hello", model_version="v1")
    response.outputs.add(name="probability", datatype="FP64", shape=[1])
    response.raw_output_contents.append(b"\0" * 8)

    def infer(request: Any, context: Any) -> Any:
        return response

    handler = grpc.unary_unary_rpc_method_handler(
        infer,
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelInferResponse.SerializeToString,
    )
    server = grpc.server(ThreadPoolExecutor(THREADS))
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler})]
    )
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
