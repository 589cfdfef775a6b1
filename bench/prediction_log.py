"""The prediction log's own cost per record, in process: what logging adds to a request.

    uv run python bench/prediction_log.py [--records 20000] [--concurrency 8] [--fsync interval]

Concurrent coroutines (as many as in-flight requests) each log records of a 1 x 20
float prediction and wait for ``log``'s future as the data plane does (the record is
in the write-ahead log before the response). A background shipper sends them to a sink
that builds the Arrow IPC messages observability would get (no network). Prints the
process CPU time per record (the event loop, the shipper and the fsync thread) and the
wall time per record. Runs against whatever ``modelplane.serving.prediction_log`` is
importable, so the same script measures an older logger (``PYTHONPATH`` to its source):
one whose ``log`` returns nothing is simply not awaited.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.serving.log_columns import encode_columnar
from modelplane.serving.prediction_log import PredictionLogger, PredictionRecord
from modelplane.serving.servable_model import ModelInput


class ArrowSink:
    """Builds what ObservabilitySink would send, and drops it."""

    def __init__(self) -> None:
        self.records = 0

    async def send(self, records: Any) -> list[Any]:
        encode_columnar(records)
        self.records += len(records)
        return []

    async def close(self) -> None:
        return None


async def run(args: argparse.Namespace) -> None:
    sink = ArrowSink()
    kwargs: dict[str, Any] = {"flush_seconds": 0.2, "batch_size": 500}
    if "fsync" in inspect.signature(PredictionLogger).parameters:
        from modelplane.serving.write_ahead_log import FsyncPolicy

        kwargs["fsync"] = FsyncPolicy(args.fsync, args.fsync_interval_ms / 1000)
    logger = PredictionLogger(sink, Path(tempfile.mkdtemp(prefix="mp-bench-plog-")), **kwargs)
    logger.start()
    x = np.random.default_rng(0).normal(size=(1, 20))
    out = np.array([1])
    per = args.records // args.concurrency

    async def client(c: int) -> None:
        for i in range(per):
            rec = PredictionRecord(f"{c:08x}{i:024x}", "churn", "churn", "1", "production",
                                   time.time(), ModelInput(1, {}, x, "input-0"), out, 1.0, {},
                                   "champion", "ab" * 16, "", "", "cd" * 8)
            written = logger.log(rec) if args.log else None
            if written is not None:
                await written
            await asyncio.sleep(0)  # the rest of a request's work yields to the loop too

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(args.concurrency)))
    while args.log and sink.records < per * args.concurrency:
        await asyncio.sleep(0.01)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await logger.close()
    n = per * args.concurrency
    print(f"{'logging ' + args.fsync if args.log else 'logging off'}: {n} records, "
          f"cpu {cpu / n * 1e6:.1f} us/record, wall {wall / n * 1e6:.1f} us/record")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--fsync", default="interval", choices=["always", "interval", "never"])
    p.add_argument("--fsync-interval-ms", type=float, default=100.0)
    p.add_argument("--off", dest="log", action="store_false", help="measure without logging")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
