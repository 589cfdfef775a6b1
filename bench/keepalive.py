"""The benchmarks' minimal keep-alive HTTP/1.1 client: one connection, one request
at a time, each answer read by its Content-Length (no chunked bodies)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def timed_requests(host: str, port: int, request: bytes, count: int,
                         latencies: list[float], check: Callable[[int, bytes], None]) -> None:
    """Send ``request`` ``count`` times on one connection; append each round trip's
    seconds to ``latencies`` and pass every answer's status and body to ``check``."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            check(status, await reader.readexactly(length))  # parsing the answer counts
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
