"""Hello-world services for bench/bentoml_overhead.py: where BentoML's HTTP stack costs time.

``Default``: an ``@bentoml.api`` route with BentoML's defaults. ``Mounted``: a Starlette app
mounted with ``bentoml.asgi_app``, BentoML's metrics, access log and tracing off for it.
``Wrapped``: Loopline's arrangement, the app in front of BentoML's via ``service_class``.
``/objects`` reports the worker's live object count, where the per-request timer leak shows.
"""

import gc

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


async def objects(request: Request) -> JSONResponse:
    return JSONResponse({"objects": len(gc.get_objects())})


app = Starlette(routes=[Route("/hello", hello), Route("/objects", objects)])
QUIET = {
    "metrics": {"enabled": False},
    "logging": {"access": {"enabled": False}},
    "tracing": {"excluded_urls": ["/hello", "/objects"]},
}


@bentoml.service
class Default:
    """BentoML's API routes take POST (with a JSON body) only."""

    @bentoml.api(route="/hello")
    def hello(self) -> dict[str, str]:
        return {"hello": "world"}

    @bentoml.api(route="/objects")
    def objects(self) -> dict[str, int]:
        return {"objects": len(gc.get_objects())}


@bentoml.service(**QUIET)
@bentoml.asgi_app(app, path="/")
class Mounted:
    pass


class Front:
    def __init__(self, bentoml_app: object) -> None:
        self.bentoml_app = bentoml_app

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        target = (
            app if scope["type"] == "http" and scope["path"] in ("/hello", "/objects") else None
        )
        await (target or self.bentoml_app)(scope, receive, send)


class FrontService(bentoml.Service):
    def to_asgi(self, is_main: bool = True) -> Front:
        return Front(super().to_asgi(is_main))


@bentoml.service(service_class=FrontService, **QUIET)
class Wrapped:
    pass
