"""Check 6: latency percentiles and throughput of predict at batch sizes 1 / 32 / 1024."""

from __future__ import annotations

import time

import numpy as np

from ..report import Bound, CheckResult, Measurement
from .base import Check, CheckContext, Judge, ParamSpec, ResolvedConfig, ThresholdSpec

BATCH_SIZES = (1, 32, 1024)


class StressCheck(Check):
    name = "stress"
    title = "Latency and throughput of predict under load"
    description = ("Calls predict in-process repeatedly, for `duration_s` seconds (at least "
                   "`min_calls` calls) at each batch size 1, 32 and 1024, on rows of the "
                   "dataset; reports p50 / p95 / p99 latency (ms) and rows per second.")
    thresholds = (
        ThresholdSpec("max_p99_ms_batch_1", Bound.UPPER, "Most p99 latency of one row (ms)",
                      default=100.0),
        ThresholdSpec("max_p99_ms_batch_32", Bound.UPPER, "Most p99 latency of 32 rows (ms)"),
        ThresholdSpec("max_p99_ms_batch_1024", Bound.UPPER, "Most p99 latency of 1024 rows (ms)"),
        ThresholdSpec("min_rows_per_s_batch_1", Bound.LOWER, "Least throughput at batch 1"),
        ThresholdSpec("min_rows_per_s_batch_1024", Bound.LOWER, "Least throughput at batch 1024"),
    )
    params = (ParamSpec("duration_s", "0.3", "Seconds of calls per batch size"),
              ParamSpec("min_calls", "5", "Least calls per batch size", int))

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        measurements = []
        n = len(ctx.x)
        rng = np.random.default_rng(ctx.seed + 2)
        for batch in BATCH_SIZES:
            idx = rng.choice(n, size=batch, replace=n < batch)
            frame = ctx.x.iloc[idx]
            ctx.model.predict(frame)  # warm-up
            latencies: list[float] = []
            deadline = time.perf_counter() + cfg.param("duration_s")
            while len(latencies) < cfg.param("min_calls") or time.perf_counter() < deadline:
                start = time.perf_counter()
                ctx.model.predict(frame)
                latencies.append(time.perf_counter() - start)
                if len(latencies) >= 100_000:
                    break
            lat_ms = np.array(latencies) * 1000
            p50, p95, p99 = (float(v) for v in np.percentile(lat_ms, [50, 95, 99]))
            rows_per_s = batch * len(lat_ms) / float(lat_ms.sum() / 1000)
            subject = f"batch={batch}"
            measurements += [Measurement("p50_ms", p50, subject), Measurement("p95_ms", p95, subject),
                             Measurement("p99_ms", p99, subject),
                             Measurement("rows_per_s", rows_per_s, subject),
                             Measurement("calls", float(len(lat_ms)), subject)]
            for spec in self.thresholds:
                if spec.name.endswith(f"_batch_{batch}"):
                    value = p99 if spec.name.startswith("max_p99") else rows_per_s
                    judge.apply(spec.name, value, subject)
        return judge.result(self.name, measurements=measurements)
