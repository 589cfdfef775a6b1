"""Fixtures: a test-only contract compiled at test time, served by a real kit gRPC
server, and the gateway in front of it on a real uvicorn HTTP server."""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import google.api
import grpc
import grpc_tools
import httpx
import pytest
import uvicorn
from google.protobuf import empty_pb2
from grpc_tools import protoc
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelplane.gateway.app import create_app
from modelplane.gateway.catalog import Catalog
from modelplane.gateway.settings import GatewaySettings
from modelplane.kit import errors
from modelplane.kit.server import Servicer, ServiceSpec, running
from modelplane.kit.settings import ServiceSettings
from modelplane.kit.telemetry import setup_tracing

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROTO = "modelplane/gatewaytest/v1/gatewaytest.proto"


@dataclass
class Contract:
    pb2: ModuleType
    pb2_grpc: ModuleType


def compile_test_contract(out: Path) -> Contract:
    """protoc the test contract into ``out`` and import it (``modelplane.gatewaytest.v1``)."""
    site = Path(google.api.__path__[0]).parent.parent
    includes = [HERE / "protos", REPO / "protos", site, Path(grpc_tools.__file__).parent / "_proto"]
    code = protoc.main(["grpc_tools.protoc", *(f"-I{p}" for p in includes),
                        f"--python_out={out}", f"--grpc_python_out={out}", PROTO])
    assert code == 0, "protoc failed on the test contract"
    sys.path.insert(0, str(out))
    try:
        importlib.invalidate_caches()
        pb2 = importlib.import_module("modelplane.gatewaytest.v1.gatewaytest_pb2")
        pb2_grpc = importlib.import_module("modelplane.gatewaytest.v1.gatewaytest_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return Contract(pb2, pb2_grpc)


@pytest.fixture(scope="session")
def contract(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    return compile_test_contract(tmp_path_factory.mktemp("gatewaytest_proto"))


@pytest.fixture(scope="session")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_tracing("gatewaytest", processors=[SimpleSpanProcessor(exporter)])
    yield exporter


@dataclass
class WidgetBackend:
    """The test servicer: records what it received, answers from it."""

    pb2: ModuleType
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    cancelled_streams: int = 0

    def _record(self, name: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        self.calls.append((name, request, md))

    def last(self, name: str) -> tuple[Any, dict[str, str]]:
        for call_name, request, md in reversed(self.calls):
            if call_name == name:
                return request, md
        raise AssertionError(f"{name} was not called")

    async def GetWidget(self, request: Any, context: Any) -> Any:
        self._record("GetWidget", request, context)
        if request.name.endswith("/missing"):
            raise errors.NotFound(f"widget {request.name!r} not found", reason="WIDGET_NOT_FOUND",
                                  metadata={"widget": request.name})
        widget = self.pb2.Widget(name=request.name, display_name="Blue one", count=3, big=2**40,
                                 weight=1.5, color=self.pb2.COLOR_BLUE, tags=["a", "b"],
                                 labels={"team": "ml"}, url="https://example.test/w")
        widget.create_time.FromSeconds(1_700_000_000)
        widget.ttl.FromSeconds(90)
        widget.extra.update({"k": [1, "x"]})
        return widget

    async def ListWidgets(self, request: Any, context: Any) -> Any:
        self._record("ListWidgets", request, context)
        n = min(request.page_size or 2, 50)  # a real service caps page_size too
        return self.pb2.ListWidgetsResponse(
            widgets=[self.pb2.Widget(name=f"shelves/{request.shelf or 'any'}/widgets/{i}")
                     for i in range(n)], next_page_token="next")

    async def CreateWidget(self, request: Any, context: Any) -> Any:
        self._record("CreateWidget", request, context)
        widget = self.pb2.Widget()
        widget.CopyFrom(request.widget)
        widget.name = f"shelves/{request.shelf}/widgets/{request.widget_id or 'new'}"
        return widget

    async def UpdateWidget(self, request: Any, context: Any) -> Any:
        self._record("UpdateWidget", request, context)
        return request.widget

    async def DeleteWidget(self, request: Any, context: Any) -> Any:
        self._record("DeleteWidget", request, context)
        return empty_pb2.Empty()

    async def ScoreWidget(self, request: Any, context: Any) -> Any:
        self._record("ScoreWidget", request, context)
        return self.pb2.ScoreWidgetResponse(
            score=sum(request.features) + sum(request.named.values()), name=request.name)

    async def GetFile(self, request: Any, context: Any) -> Any:
        self._record("GetFile", request, context)
        return self.pb2.File(path=request.path, content=self.pb2.FileContent(
            text=f"content of {request.path}", size=len(request.path)))

    async def WatchWidgets(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self._record("WatchWidgets", request, context)
        if request.fail_after < 0:
            raise errors.FailedPrecondition("nothing to watch", reason="NOTHING_TO_WATCH")
        for i in range(request.count):
            if request.fail_after and i == request.fail_after:
                raise errors.Unavailable("widget feed went away", reason="FEED_DOWN",
                                         metadata={"after": str(i)})
            yield self.pb2.WidgetEvent(sequence=i, widget=self.pb2.Widget(name=f"w{i}"))
        if request.linger:
            try:
                await asyncio.sleep(request.linger)
            except asyncio.CancelledError:
                self.cancelled_streams += 1
                raise

    async def ImportWidgets(self, request_iterator: Any, context: Any) -> Any:
        names = []
        async for widget in request_iterator:
            names.append(widget.name)
        self._record("ImportWidgets", names, context)
        return self.pb2.ImportWidgetsResponse(count=len(names), names=names)

    async def Echo(self, request: Any, context: Any) -> Any:
        self._record("Echo", request, context)
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        ctx = trace.get_current_span().get_span_context()
        return self.pb2.EchoResponse(metadata=md, text=request.text,
                                     trace_id=format(ctx.trace_id, "032x") if ctx.is_valid else "")

    async def Fail(self, request: Any, context: Any) -> Any:
        self._record("Fail", request, context)
        if request.delay_seconds:
            await asyncio.sleep(request.delay_seconds)
        if request.code == "CRASH":
            raise RuntimeError("secret internal detail /etc/passwd")
        cls = errors.ERRORS_BY_CODE[request.code]
        violations = ([errors.FieldViolation("widget.count", "must be positive")]
                      if request.code == "INVALID_ARGUMENT" else [])
        raise cls(request.message or f"failing with {request.code}", reason="TEST_FAILURE",
                  metadata={"widget": "w1"}, field_violations=violations)

    async def PurgeShelf(self, request: Any, context: Any) -> Any:
        self._record("PurgeShelf", request, context)
        return empty_pb2.Empty()


@dataclass
class Stack:
    contract: Contract
    backend: WidgetBackend
    backend_address: str
    url: str
    app: Any


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class GatewayServer:
    """The gateway on a real uvicorn server, on an ephemeral port, in this event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = _free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning",
                                                    access_log=False, http="httptools"))
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self.task = asyncio.ensure_future(self.server.serve(sockets=[self.sock]))
        for _ in range(500):
            if self.server.started:
                return self
            await asyncio.sleep(0.01)
        raise RuntimeError("gateway did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task
        self.sock.close()


def gateway_settings(backend_address: str, **env: str) -> GatewaySettings:
    environ = {"MODELPLANE_AUTH": "off", "MODELPLANE_GATEWAYTEST_TARGET": backend_address,
               "MODELPLANE_GATEWAY_ADDR": "127.0.0.1:0", "MODELPLANE_DATA_DIR": "/nonexistent",
               # no serving here: /v2 (OIP REST) is forwarded to a closed port (503);
               # tests/test_gateway_oip.py runs it against the real serving
               "MODELPLANE_SERVING_HTTP_TARGET": "127.0.0.1:1",
               **env}
    return GatewaySettings.from_env(environ)


@pytest.fixture(scope="session")
async def stack(contract: Contract, spans: InMemorySpanExporter) -> AsyncIterator[Stack]:
    backend = WidgetBackend(contract.pb2)
    spec = ServiceSpec(name="gatewaytest", servicers=[Servicer(
        contract.pb2_grpc.add_WidgetServiceServicer_to_server, backend,
        "modelplane.gatewaytest.v1.WidgetService")])
    svc_settings = ServiceSettings.from_env("gatewaytest", {
        "MODELPLANE_AUTH": "off", "MODELPLANE_GATEWAYTEST_ADDR": "127.0.0.1:0",
        "MODELPLANE_DATA_DIR": "/nonexistent"}).with_listen("127.0.0.1:0")
    async with running(spec, svc_settings) as svc:
        catalog = Catalog.from_files([contract.pb2.DESCRIPTOR])
        app = create_app(gateway_settings(svc.address, MODELPLANE_GATEWAY_MAX_BODY_BYTES="65536",
                                          MODELPLANE_GATEWAY_TIMEOUT_SECONDS="5"),
                         catalog)
        async with GatewayServer(app) as gw:
            yield Stack(contract, backend, svc.address, gw.url, app)


@pytest.fixture(scope="session")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
        yield http
