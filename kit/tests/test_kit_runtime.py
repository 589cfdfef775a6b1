"""The kit's ServiceRuntime: STARTING until built, side HTTP servers, one stop."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2

from modelplane.kit.errors import Unavailable
from modelplane.kit.pytest_plugin import free_port
from modelplane.kit.runtime import ServiceRuntime, SideServer
from modelplane.kit.server import Servicer, ServiceSpec, running
from modelplane.kit.settings import ServiceSettings
from modelplane.kit.status import raise_from_rpc_error

SVC = "test.kit.v1.Shop"
S = wrappers_pb2.StringValue


async def hello(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
    """The smallest ASGI app: 200 "hello <path>"."""
    body = f"hello {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def http_get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data.decode()


class Shop(ServiceRuntime[dict[str, str]]):
    """A runtime whose build waits for ``release`` and leaves traces of what it did."""

    def __init__(self, *, fail: bool = False, http: bool = False) -> None:
        super().__init__("shop")
        self.release = asyncio.Event()
        self.fail = fail
        self.http = http
        self.events: list[str] = []
        self.side: SideServer | None = None
        self.ticker: asyncio.Task[Any] | None = None

    async def _tick(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("task cancelled")
            raise

    async def build(self) -> dict[str, str]:
        self.ticker = self.spawn(self._tick(), "tick")
        if self.http:
            self.side = await self.serve_http(hello, "127.0.0.1:0", "shop page")
        await self.release.wait()
        if self.fail:
            raise RuntimeError("the shop's database is gone")
        return {"apple": "red"}

    async def close(self) -> None:
        self.events.append("closed")


def _servicer(rt: Shop) -> Servicer:
    async def colour(request: S, context: grpc.aio.ServicerContext) -> S:
        return S(value=rt.current()[request.value])

    def add(impl: object, server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            colour, request_deserializer=S.FromString, response_serializer=S.SerializeToString)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            SVC, {"Colour": handler}),))

    return Servicer(add, rt, SVC)


async def test_calls_are_refused_with_starting_until_build_returns(tmp_path: Any) -> None:
    rt = Shop()
    port = free_port()
    settings = ServiceSettings(service="shop", listen=f"127.0.0.1:{port}", data_root=tmp_path,
                               auth_enabled=False)
    spec = ServiceSpec("shop", [_servicer(rt)], on_start=rt.start, on_stop=rt.stop)
    ctx = running(spec, settings)
    entering = asyncio.ensure_future(ctx.__aenter__())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(f"/{SVC}/Colour", request_serializer=S.SerializeToString,
                              response_deserializer=S.FromString)
        await ch.channel_ready()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(S(value="apple"))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(Unavailable) as mapped:
            raise_from_rpc_error(err.value)
        assert mapped.value.reason == "STARTING"
        assert mapped.value.message == "the shop is still starting"
        assert not entering.done()

        rt.release.set()
        await entering
        try:
            assert (await call(S(value="apple"))).value == "red"
        finally:
            await ctx.__aexit__(None, None, None)
    assert rt.events == ["task cancelled", "closed"]


async def test_side_server_serves_until_stop_and_stop_runs_once() -> None:
    rt = Shop(http=True)
    rt.release.set()
    await rt.start()
    assert rt.side is not None and rt.side.running and rt.side.port > 0
    assert (await http_get(rt.side.port, "/metrics")).endswith("hello /metrics")

    await rt.stop()
    await rt.stop()  # a second stop does nothing
    assert rt.events == ["task cancelled", "closed"]
    assert not rt.side.running
    with pytest.raises(OSError):
        await http_get(rt.side.port, "/")
    assert rt.ticker is not None and rt.ticker.cancelled()
    with pytest.raises(RuntimeError, match="was stopped"):  # no restart: make a new one
        await rt.start()


async def test_a_failed_build_releases_its_side_server_and_tasks() -> None:
    rt = Shop(http=True, fail=True)
    rt.release.set()
    with pytest.raises(RuntimeError, match="database is gone"):
        await rt.start()
    assert rt.side is not None and not rt.side.running
    assert rt.ticker is not None and rt.ticker.cancelled()
    assert rt.events == ["task cancelled"]  # close() is for a built runtime's stop
    with pytest.raises(Unavailable, match="still starting"):
        rt.current()


async def test_side_server_on_a_taken_port_fails_its_start() -> None:
    first = SideServer(hello, "127.0.0.1:0", "first")
    await first.start()
    try:
        second = SideServer(hello, f"127.0.0.1:{first.port}", "second")
        with pytest.raises(OSError, match="could not listen"):
            await second.start()
        assert not second.running
        assert (await http_get(first.port, "/x")).endswith("hello /x")
    finally:
        await first.stop()


class Warehouse(ServiceRuntime[str]):
    """A build that opens a listening socket, a SQLite file and a channel, then fails
    (or not): what it opened is registered with ``closing``."""

    def __init__(self, db: Any, *, fail: bool) -> None:
        super().__init__("warehouse")
        self.db_path = db
        self.fail = fail
        self.events: list[str] = []
        self.listener: asyncio.Server | None = None
        self.db: sqlite3.Connection | None = None
        self.peer: grpc.aio.Channel | None = None
        self.listen_port = 0

    async def build(self) -> str:
        self.listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        self.listen_port = int(self.listener.sockets[0].getsockname()[1])

        async def close_listener() -> None:
            assert self.listener is not None
            self.listener.close()
            await self.listener.wait_closed()
            self.events.append("listener closed")

        self.closing(close_listener, "the listener")
        self.db = sqlite3.connect(self.db_path, check_same_thread=False)
        db = self.db

        def close_db() -> None:
            db.close()
            self.events.append("db closed")

        self.closing(close_db, "the database")
        self.closing(self._broken_closer, "a part that fails to close")
        self.peer = self.channel("127.0.0.1:1", ServiceSettings(
            service="warehouse", listen="127.0.0.1:0", data_root=self.db_path.parent,
            auth_enabled=False))
        if self.fail:
            raise RuntimeError("the shelves are missing")
        return "open"

    def _broken_closer(self) -> None:
        self.events.append("broken closer ran")
        raise OSError("already gone")

    async def close(self) -> None:
        self.events.append("closed")


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_a_start_that_fails_midway_closes_what_its_build_opened(tmp_path: Any) -> None:
    rt = Warehouse(tmp_path / "w.db", fail=True)
    port = free_port()
    settings = ServiceSettings(service="warehouse", listen=f"127.0.0.1:{port}",
                               data_root=tmp_path, auth_enabled=False)
    spec = ServiceSpec("warehouse", [], on_start=rt.start, on_stop=rt.stop)
    with pytest.raises(RuntimeError, match="shelves are missing"):
        async with running(spec, settings):
            pytest.fail("the service must not start")
    assert rt.listener is not None and rt.db is not None and rt.peer is not None
    assert _refused(rt.listen_port)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        rt.db.execute("select 1")
    # newest first, a failing closer does not stop the others, close() is not called
    assert rt.events == ["broken closer ran", "db closed", "listener closed"]
    assert rt.peer.get_state() is grpc.ChannelConnectivity.SHUTDOWN


async def test_stop_closes_the_registered_parts_after_close_and_before_channels(
        tmp_path: Any) -> None:
    rt = Warehouse(tmp_path / "w.db", fail=False)
    await rt.start()
    assert rt.current() == "open"
    assert rt.peer is not None and rt.peer.get_state() is not grpc.ChannelConnectivity.SHUTDOWN
    port = rt.listen_port
    assert not _refused(port)
    await rt.stop()
    assert rt.events == ["closed", "broken closer ran", "db closed", "listener closed"]
    assert _refused(port)
    assert rt.peer.get_state() is grpc.ChannelConnectivity.SHUTDOWN
    await rt.stop()  # once
    assert rt.events.count("db closed") == 1
