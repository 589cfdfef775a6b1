"""A small pooled keep-alive HTTP/1.1 client (asyncio streams + httptools' parser).

The gateway forwards OIP REST to serving with it. A general client (httpx)
spent ~2.8 ms of CPU per request here, more than the forwarding is worth; this
one writes the request in one buffer and parses the answer with httptools (the
parser uvicorn uses), so a forwarded request costs little beyond the two socket
writes and reads.

Idle connections are reused for ``idle_seconds`` (below uvicorn's 5 s
keep-alive, so the pool lets go of a connection before serving closes it); a
reused connection that turns out closed before a byte of the answer arrives is
retried once on a new one (the server closed it idle: it did not see the request).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import httptools


class UpstreamUnavailable(Exception):
    """No connection could be made."""


class UpstreamTimeout(Exception):
    """No (complete) answer in time."""


class UpstreamBroken(Exception):
    """The connection broke or the answer was not valid HTTP."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class _Parsed:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    done: bool = False
    keep_alive: bool = False
    parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.done = True
        # asked here: once the message is complete llhttp resets for the next one
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()


class _Stale(Exception):
    """A reused connection was closed before the answer began."""


class HttpPool:
    def __init__(self, host: str, port: int, *, max_idle: int = 64, idle_seconds: float = 2.0,
                 connect_timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = deque()
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._connect_timeout = connect_timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                          self._connect_timeout)
        except (TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"{self.host}:{self.port}: {exc!r}") from None

    def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < self._idle_seconds and not writer.is_closing() \
                    and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes, timeout: float) -> Answer:
        head = [f"{method} {target} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in headers]
        head.append(f"content-length: {len(body)}\r\n\r\n")
        data = "".join(head).encode("latin-1") + body
        try:
            async with asyncio.timeout(timeout):
                reused = self._take()
                if reused is not None:
                    try:
                        return await self._exchange(*reused, data, reused=True)
                    except _Stale:
                        pass
                return await self._exchange(*await self._connect(), data, reused=False)
        except TimeoutError:
            raise UpstreamTimeout(f"no answer within {timeout} s") from None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        data: bytes, *, reused: bool) -> Answer:
        parsed = _Parsed()
        parser = parsed.parser = httptools.HttpResponseParser(parsed)
        started = False
        keep = False
        try:
            writer.write(data)
            await writer.drain()
            while not parsed.done:
                chunk = await reader.read(65536)
                if not chunk:
                    if reused and not started:
                        raise _Stale
                    raise UpstreamBroken("connection closed before the answer was complete")
                started = True
                parser.feed_data(chunk)
            keep = parsed.keep_alive
            return Answer(parser.get_status_code(), parsed.headers, b"".join(parsed.body))
        except (ConnectionError, OSError) as exc:
            if reused and not started:
                raise _Stale from None
            raise UpstreamBroken(repr(exc)) from None
        except httptools.HttpParserError as exc:
            raise UpstreamBroken(f"invalid HTTP answer: {exc}") from None
        finally:
            if keep and len(self._idle) < self._max_idle:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()

    async def close(self) -> None:
        while self._idle:
            _, writer, _ = self._idle.pop()
            writer.close()
