"""The keep-alive pool the gateway forwards OIP REST with, against real sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from modelplane.gateway.http_pool import (
    HttpPool,
    UpstreamBroken,
    UpstreamTimeout,
    UpstreamUnavailable,
)

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def _server(handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_reuses_a_connection_and_retries_one_the_server_closed_while_idle() -> None:
    connections = 0

    async def answer_once_then_close(reader: asyncio.StreamReader,
                                     writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)  # keep-alive answer ...
        await writer.drain()
        writer.close()  # ... then the server drops the idle connection

    server, port = await _server(answer_once_then_close)
    async with server:
        pool = HttpPool("127.0.0.1", port)
        first = await pool.request("GET", "/v2", [("a", "b")], b"", 5)
        await asyncio.sleep(0.05)
        second = await pool.request("GET", "/v2", [], b"", 5)
        assert (first.status, first.body, second.status) == (200, b"{}", 200)
        assert (b"content-type", b"application/json") in first.headers
        assert connections == 2
        await pool.close()


async def test_keeps_alive_and_sends_the_body() -> None:
    seen: list[bytes] = []
    connections = 0

    async def echo_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            seen.append(await reader.readexactly(length))
            writer.write(b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n0\r\n\r\n")
            await writer.drain()

    server, port = await _server(echo_length)
    async with server:
        pool = HttpPool("127.0.0.1", port)
        for body in (b'{"inputs": []}', b"x" * 100_000):
            answer = await pool.request("POST", "/v2/models/m/infer", [], body, 5)
            assert (answer.status, answer.body) == (400, b"abc")
        assert seen == [b'{"inputs": []}', b"x" * 100_000] and connections == 1
        await pool.close()


async def test_unreachable_slow_and_broken_upstreams() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with pytest.raises(UpstreamUnavailable):
        await HttpPool("127.0.0.1", closed_port).request("GET", "/", [], b"", 5)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()
        writer.close()

    for handler, error in ((silent, UpstreamTimeout), (garbage, UpstreamBroken),
                           (half, UpstreamBroken)):
        server, port = await _server(handler)
        async with server:
            with pytest.raises(error):
                await HttpPool("127.0.0.1", port).request("GET", "/", [], b"", 0.5)


async def test_oip_forwarding_takes_serving_replicas_in_turn_and_skips_one_that_is_down(
) -> None:
    """``MODELPLANE_SERVING_HTTP_TARGET=a,b,c``: requests go round robin; a replica that
    refuses the connection (nothing sent) hands the request to the next one."""
    from opentelemetry import trace

    from modelplane.gateway.oip_proxy import OipProxy
    from modelplane.gateway.settings import GatewaySettings

    hits: dict[int, int] = {}

    def counting(tag: int):
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                hits[tag] = hits.get(tag, 0) + 1
                writer.write(OK)
                await writer.drain()
        return handler

    first, port_a = await _server(counting(1))
    second, port_b = await _server(counting(2))
    with socket.socket() as s:  # a port nobody listens on: a replica that is down
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    target = f"127.0.0.1:{port_a},127.0.0.1:{dead},127.0.0.1:{port_b}"
    settings = GatewaySettings.from_env({"MODELPLANE_AUTH": "off",
                                         "MODELPLANE_SERVING_HTTP_TARGET": target})
    proxy = OipProxy(settings, auth=None,
                     start_span=lambda *_: trace.INVALID_SPAN)  # type: ignore[arg-type,return-value]
    async with first, second:
        answers = [await proxy._forward("GET", "/v2", [], b"") for _ in range(30)]
        await proxy.close()
    assert {a.status for a in answers} == {200}
    # the dead replica's turns fall to the next one (b): a gets 10, b 20, nothing lost
    assert hits == {1: 10, 2: 20}
