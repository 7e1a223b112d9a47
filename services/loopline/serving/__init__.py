"""The predictor: a BentoML service answering native JSON, OIP v2 REST and OIP v2 gRPC.

service      the BentoML service and the ASGI front that routes around BentoML's HTTP stack
cli          ``loopline serve``: settings and pre-flight checks, BentoML's arbiter and workers
worker       one worker's transports (HTTP app, gRPC server) over its runtime: start and drain
endpoints    what both transports answer besides predictions: OIP metadata, the bearer token
runtime      the data plane: model, features, batcher, prediction log, admission; no transport
http         the HTTP routes (native, OIP REST, health, metrics) as one plain ASGI app
grpc_server  OIP gRPC in the worker's threads, handing calls to the worker's event loop
oip          OIP tensors to rows and predictions to tensors, for both transports
oip_rest     OIP REST inference bodies, JSON and binary tensor extension
schema       the request fields of a model spec; native request validation
batching     micro-batches on the event loop, one feature read in flight
core         a batch's feature read, then preprocessing, network and prediction records
served       which model version a server serves
metrics      every Prometheus series (request errors and their codes: loopline.errors)

The prediction log itself is ``loopline.predictions``; why the hot path is built this way, with
the measurements, is in docs/decisions.md.
"""
