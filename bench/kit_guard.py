"""The kit server's per-call cost in Python: its interceptors around a handler that
answers at once, without the network or gRPC's core.

Each call goes the way grpc.aio takes it: the server's interceptors resolve the
method's handler (``intercept_service``), then the handler runs with the call's
context. The context here is a stand-in with the methods the interceptors read
(metadata with a W3C ``traceparent``, the peer); tracing is on (an SDK
TracerProvider with no exporter, as in a service without OTLP). Printed: CPU
microseconds per call (``time.process_time``), best and median of the rounds,
for this checkout's kit server and for the kit server of a git revision (loaded
from ``git show REV:kit/src/modelplane/kit/server.py``), rounds alternated:

    uv run python bench/kit_guard.py                      # against 5e1cc81 (before)
    uv run python bench/kit_guard.py --before REV --calls 20000 --rounds 7

It measures the interceptors' share only; ``bench/online_features.py --floor``
measures the whole server (gRPC's core included) over real connections.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import grpc
from google.protobuf import wrappers_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from modelplane.kit.auth import Role
from modelplane.kit.settings import ServiceSettings

METHOD = "/bench.v1.Echo/Read"
ROOT = Path(__file__).resolve().parent.parent


class Metadatum(NamedTuple):
    """grpc.aio's metadata item: a (key, value) pair with names."""

    key: str
    value: str


class Details:
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.method = METHOD
        self.invocation_metadata = metadata


class Context:
    """What the interceptors read of a ``grpc.aio.ServicerContext``."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50412"


def load_server(rev: str) -> types.ModuleType:
    """The kit's server module as it was at ``rev``."""
    source = subprocess.run(["git", "show", f"{rev}:kit/src/modelplane/kit/server.py"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"kit_server_{rev}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:server.py", "exec"), module.__dict__)  # noqa: S102
    return module


def chain(server: types.ModuleType, settings: ServiceSettings) -> Callable[[Any], Any]:
    """``resolve(details) -> handler`` through the interceptors ``build_server`` installs."""
    reply = wrappers_pb2.StringValue(value="ok")

    async def read(request: Any, context: Any) -> Any:
        return reply

    handler = grpc.unary_unary_rpc_method_handler(read)
    spec = server.ServiceSpec(name="bench", servicers=[],
                              method_access={METHOD: Role.READER})
    # grpc keeps a server's interceptors out of reach: note them as build_server passes them
    seen: list[Any] = []
    make_server = grpc.aio.server

    def noting(*a: Any, **kw: Any) -> Any:
        seen.extend(kw.get("interceptors") or ())
        return make_server(*a, **kw)

    grpc.aio.server = noting
    try:
        server.build_server(spec, settings)
    finally:
        grpc.aio.server = make_server
    interceptors = list(seen)

    async def resolve(details: Any) -> Any:
        async def base(_: Any) -> Any:
            return handler

        continuation = base
        for interceptor in reversed(interceptors):
            continuation = _bind(interceptor, continuation)
        return await continuation(details)

    return resolve


def _bind(interceptor: Any, continuation: Any) -> Any:
    async def next_step(details: Any) -> Any:
        return await interceptor.intercept_service(continuation, details)
    return next_step


async def cpu_per_call(resolve: Callable[[Any], Any], calls: int) -> float:
    metadata = (Metadatum("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                Metadatum("user-agent", "grpc-python-asyncio/1.76.0"))
    details, context = Details(metadata), Context(metadata)
    request = wrappers_pb2.StringValue(value="x")
    started = time.process_time()
    for _ in range(calls):
        handler = await resolve(details)
        await handler.unary_unary(request, context)
    return (time.process_time() - started) / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="5e1cc81", help="git revision to compare with")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    trace.set_tracer_provider(TracerProvider())
    settings = ServiceSettings.from_env("bench", {"MODELPLANE_AUTH": "off",
                                                  "MODELPLANE_BENCH_ADDR": "127.0.0.1:0"})
    import modelplane.kit.server as current

    sides = {f"before ({args.before})": chain(load_server(args.before), settings),
             "this checkout": chain(current, settings)}
    for resolve in sides.values():  # warm up: first-call work, imports
        await cpu_per_call(resolve, 500)
    results: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, resolve in sides.items():
            results[name].append(await cpu_per_call(resolve, args.calls))
    for name, values in results.items():
        print(f"{name:>22}: {min(values):6.1f} us/call best, "
              f"{statistics.median(values):6.1f} median ({args.rounds} rounds x {args.calls})")
    before, after = (statistics.median(v) for v in results.values())
    print(f"interceptor CPU per call, before / this checkout: {before / after:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
