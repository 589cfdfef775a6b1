"""The gateway's ASGI application: transcoded RPC routes, ``/openapi.json``, ``/docs``
(Swagger UI over it, assets served from the gateway), ``/healthz``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelplane.gateway.api_docs import ASSETS_PREFIX, DOCS_PATH, ApiDocs
from modelplane.gateway.backends import Backends
from modelplane.gateway.catalog import Catalog
from modelplane.gateway.gateway_auth import GatewayAuth
from modelplane.gateway.oip_proxy import OipProxy, is_oip_path
from modelplane.gateway.openapi import build_openapi
from modelplane.gateway.rpc_handler import Receive, Scope, Send, Transcoder
from modelplane.gateway.settings import GatewaySettings


class GatewayApp:
    """The ASGI entry point: RPC routes go straight to the transcoder (the hot path,
    no framework layers in between), ``/v2/...`` (Open Inference Protocol REST) to the
    proxy in front of serving; ``/healthz``, ``/openapi.json``, ``/docs`` and lifespan events go
    to a small Starlette app."""

    def __init__(self, transcoder: Transcoder, site: Starlette, oip: OipProxy) -> None:
        self.transcoder = transcoder
        self.catalog = transcoder.catalog
        self.site = site
        self.oip = oip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] not in _SITE_PATHS
                and not scope["path"].startswith(ASSETS_PREFIX)):
            if is_oip_path(scope["path"]):
                await self.oip(scope, receive, send)
            else:
                await self.transcoder(scope, receive, send)
        else:
            await self.site(scope, receive, send)


_SITE_PATHS = frozenset({"/healthz", "/openapi.json", DOCS_PATH})


def create_app(settings: GatewaySettings | None = None, catalog: Catalog | None = None, *,
               tracer_provider: TracerProvider | None = None) -> GatewayApp:
    """The gateway app. ``catalog`` defaults to every contract installed (``Catalog.discover``)."""
    settings = settings or GatewaySettings.from_env()
    catalog = catalog if catalog is not None else Catalog.discover()
    backends = Backends(settings)
    auth = GatewayAuth(settings.service.api_keys_file) if settings.auth_enabled else None
    transcoder = Transcoder(catalog, settings, backends, tracer_provider=tracer_provider,
                            auth=auth)
    oip = OipProxy(settings, auth=auth, start_span=transcoder.start_span)
    document = json.dumps(build_openapi(catalog, proto_names=settings.json_names == "proto",
                                        oip=bool(settings.oip_target)),
                          separators=(",", ":")).encode()

    async def openapi(_: Request) -> Response:
        return Response(document, media_type="application/json")

    docs = ApiDocs()

    async def docs_page(_: Request) -> Response:
        return Response(docs.page, media_type="text/html; charset=utf-8", headers=docs.headers)

    async def docs_asset(request: Request) -> Response:
        asset = docs.asset(request.path_params["name"])
        if asset is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(asset.body, media_type=asset.media_type,
                        headers={**docs.headers, "cache-control": "public, max-age=3600"})

    async def healthz(_: Request) -> Response:
        body = json.dumps({"status": "SERVING", "services": catalog.backends,
                           "rpcs": len(catalog.methods)}).encode()
        return Response(body, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await backends.close()
            await oip.close()

    site = Starlette(routes=[Route("/healthz", healthz, methods=["GET"]),
                             Route("/openapi.json", openapi, methods=["GET"]),
                             Route(DOCS_PATH, docs_page, methods=["GET"]),
                             Route(ASSETS_PREFIX + "{name}", docs_asset, methods=["GET"])],
                     lifespan=lifespan)
    return GatewayApp(transcoder, site, oip)
