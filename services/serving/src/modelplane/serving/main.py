"""The serving service process: gRPC (ServingService + OIP) and REST (OIP + /metrics) in one.

    modelplane-serving            # reads MODELPLANE_SERVING_* (see services/serving/README.md)

The parts and their wiring are :mod:`.runtime`'s; this is the entry point and its event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from modelplane.serving.runtime import ServingRuntime
from modelplane.serving.settings import ServingSettings

log = logging.getLogger("modelplane.serving")


def loop_runner(settings: ServingSettings) -> Callable[[Coroutine[Any, Any, None]], None]:
    """How the process runs its event loop: uvloop unless the settings say asyncio.

    The inference path is mostly event-loop work per request (gRPC completions, futures,
    timers, the model workers' thread hand-offs, the prediction log's group commit);
    uvloop does that work in C. Measured with bench/serving.py, same sitting, rounds
    alternated: server CPU per routed request 0.81 -> 0.66 ms, per plain request 0.65-0.71
    -> 0.59-0.61 ms. Where uvloop is not installed (Windows), asyncio's loop runs.
    """
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed; running on asyncio's event loop")
        else:
            return uvloop.run
    return asyncio.run


def main() -> None:
    from modelplane.kit.server import serve

    settings = ServingSettings.from_env()

    async def run() -> None:
        # Built inside the running loop: its grpc.aio channels to peers bind to this loop.
        server = ServingRuntime(settings)
        await serve(server.spec, settings.service)

    loop_runner(settings)(run())


if __name__ == "__main__":
    main()
