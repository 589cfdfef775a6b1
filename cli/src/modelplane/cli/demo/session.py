"""The demo's line to a running platform: one channel per service, stubs, progress bars,
the RPC error wrapper, the names it creates and how much data it generates."""

from __future__ import annotations

import io
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import grpc

from modelplane.cli.platform import Platform
from modelplane.kit.timestamps import time_to_pb

T = TypeVar("T")

MODEL = "fraud-detector"
DEPLOYMENT = "fraud-detector"
#: the deployment the validator's stress check loads a version into (models.deploy_staging)
STAGING = "fraud-detector-staging"


@dataclass
class DemoSize:
    customers: int
    days: int
    requests: int
    concurrency: int


#: requests: the most live traffic the two rollouts may use (they stop sending once
#: decided and the shifted part of the stream is long enough; see demo/rollouts.py)
SIZES = {"fast": DemoSize(customers=120, days=20, requests=4500, concurrency=8),
         "full": DemoSize(customers=300, days=30, requests=4500, concurrency=8)}


class DemoFailed(Exception):
    """A stage could not finish; the message says which and why."""


@dataclass
class Demo:
    platform: Platform
    api_key: str
    size: DemoSize
    console: Any
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    # -- plumbing ------------------------------------------------------------------
    def channel(self, service: str) -> grpc.aio.Channel:
        from modelplane.kit.clients import channel

        if service not in self.channels:
            self.channels[service] = channel(self.platform.grpc_address(service),
                                             api_key=self.api_key)
        return self.channels[service]

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()

    def stub(self, service: str) -> Any:
        import importlib

        grpc_mod = importlib.import_module(f"modelplane.{service}.v1.{service}_pb2_grpc")
        names = {"featurestore": "FeatureStoreServiceStub", "registry": "ModelRegistryServiceStub",
                 "validator": "ValidatorServiceStub", "serving": "ServingServiceStub",
                 "observability": "ObservabilityServiceStub"}
        return getattr(grpc_mod, names[service])(self.channel(service))

    def progress(self, transient: bool = False) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                        transient=transient)

    def stage(self, n: int, title: str) -> None:
        self.console.rule(f"[bold]{n}. {title}")


async def call(what: str, awaitable: Awaitable[T]) -> T:
    """Await an RPC; a failure becomes DemoFailed with the service's own message."""
    from modelplane.kit.errors import ModelplaneError
    from modelplane.kit.status import raise_from_rpc_error

    try:
        return await awaitable
    except grpc.aio.AioRpcError as err:
        try:
            raise_from_rpc_error(err)
        except ModelplaneError as exc:
            raise DemoFailed(f"{what}: {exc.code} {exc.reason}: {exc.message}") from None
        raise DemoFailed(f"{what}: {err.code().name}: {err.details()}") from None


async def reraise(err: Exception) -> None:
    """``err`` raised from an awaitable, so ``call`` words it like any failed RPC."""
    raise err


def time_window(start: datetime | None, end: datetime | None) -> Any:
    from modelplane.api.v1 import types_pb2

    w = types_pb2.TimeWindow()
    if start is not None:
        w.start_time.CopyFrom(time_to_pb(start))
    if end is not None:
        w.end_time.CopyFrom(time_to_pb(end))
    return w


def arrow_ipc(df: Any) -> bytes:
    import pyarrow as pa
    from pyarrow import ipc

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    i = table.column_names.index("event_timestamp")
    table = table.set_column(i, "event_timestamp",
                             table.column(i).cast(pa.timestamp("us", tz="UTC"), safe=False))
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()
