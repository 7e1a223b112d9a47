"""The predictor: a BentoML service answering native JSON, OIP v2 REST and OIP v2 gRPC.

service      the BentoML service and the ASGI front that routes around BentoML's HTTP stack
cli          ``loopline serve``: BentoML's arbiter and workers, metrics directory, settings
runtime      one worker's model, features, batcher and log, and their start-up and drain
http         the HTTP routes (native, OIP REST, health, metrics) as one plain ASGI app
grpc_server  OIP gRPC in the worker's threads, handing calls to the worker's event loop
oip          OIP tensors to rows and predictions to tensors, for both transports
oip_rest     OIP REST inference bodies, JSON and binary tensor extension
schema       the request fields of a model spec; native request validation
batching     micro-batches on the event loop, one feature read in flight
core         a batch's feature read, then preprocessing, network and prediction log
served       which model version a server serves
prediction_log, log_shipper   write-ahead segment files; the Redis Stream sink
metrics      every Prometheus series (request errors and their codes: loopline.errors)
"""
