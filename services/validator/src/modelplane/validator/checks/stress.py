"""Check 6: latency and throughput under load.

With ``deployment`` named, the load goes to that deployment through serving (the Open
Inference Protocol over gRPC): ``concurrency`` requests in flight for ``load_duration_s``
seconds (or ``requests`` requests), each of ``batch_rows`` rows of the dataset. It reports
p50 / p95 / p99 latency as the client saw it, requests and rows per second, errors (by
gRPC code) and how many answers came from the deployment's fallback chain (serving says
so in each response's ``fallback`` parameter). Without a deployment it times the model's
``predict`` in-process at batch sizes 1 / 32 / 1024; the result says which it measured.
"""

from __future__ import annotations

import time

import numpy as np

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    LoadResult,
    ParamSpec,
    ResolvedConfig,
    ThresholdSpec,
)
from modelplane.validator.report import Bound, CheckResult, Measurement

BATCH_SIZES = (1, 32, 1024)


class StressCheck(Check):
    name = "stress"
    title = "Latency and throughput under load"
    description = ("With `deployment`: sends the dataset's rows to that deployment through serving "
                   "(OIP ModelInfer over gRPC), `concurrency` requests in flight for "
                   "`load_duration_s` seconds or `requests` requests; reports p50 / p95 / p99 "
                   "latency (ms), requests and rows per second, errors and fallback answers. "
                   "Without: calls predict in-process for `duration_s` seconds (at least "
                   "`min_calls` calls) at each batch size 1, 32 and 1024.")
    thresholds = (
        ThresholdSpec("max_p99_ms_batch_1", Bound.UPPER,
                      "In-process: most p99 latency of one row (ms)", default=100.0),
        ThresholdSpec("max_p99_ms_batch_32", Bound.UPPER,
                      "In-process: most p99 latency of 32 rows (ms)"),
        ThresholdSpec("max_p99_ms_batch_1024", Bound.UPPER,
                      "In-process: most p99 latency of 1024 rows (ms)"),
        ThresholdSpec("min_rows_per_s_batch_1", Bound.LOWER,
                      "In-process: least throughput at batch 1"),
        ThresholdSpec("min_rows_per_s_batch_1024", Bound.LOWER,
                      "In-process: least throughput at batch 1024"),
        ThresholdSpec("max_p50_ms", Bound.UPPER, "Deployment: most p50 latency of a request (ms)"),
        ThresholdSpec("max_p99_ms", Bound.UPPER, "Deployment: most p99 latency of a request (ms)",
                      default=1000.0),
        ThresholdSpec("min_requests_per_s", Bound.LOWER, "Deployment: least requests per second"),
        ThresholdSpec("max_error_rate", Bound.UPPER,
                      "Deployment: most share of requests that failed", default=0.01,
                      warn_default=0.0),
        ThresholdSpec("max_fallback_rate", Bound.UPPER,
                      "Deployment: most share of answers that came from the fallback chain",
                      warn_default=0.0),
    )
    params = (ParamSpec("duration_s", "0.3", "In-process: seconds of calls per batch size"),
              ParamSpec("min_calls", "5", "In-process: least calls per batch size", int),
              ParamSpec("deployment", "", "Serving deployment to load (the OIP model name); "
                        "empty = in-process predict", str),
              ParamSpec("concurrency", "4", "Deployment: requests in flight", int),
              ParamSpec("load_duration_s", "5", "Deployment: seconds of load"),
              ParamSpec("requests", "0", "Deployment: stop after this many requests (0 = by time)",
                        int),
              ParamSpec("batch_rows", "1", "Deployment: rows per request", int),
              ParamSpec("request_columns", "", "Deployment: comma-separated dataset columns sent "
                        "as inputs (e.g. an entity key when serving joins online features); "
                        "empty = the model's inputs", str))

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        if cfg.param("deployment"):
            return self._against_deployment(ctx, cfg)
        return self._in_process(ctx, cfg)

    def _against_deployment(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        name = cfg.param("deployment")
        if ctx.deployments is None:
            raise RuntimeError(f"deployment {name!r} named but the validator has no serving "
                               "peer configured (MODELPLANE_VALIDATOR_SERVING)")
        judge = Judge(self.thresholds, cfg)
        rows = max(cfg.param("batch_rows"), 1)
        n = len(ctx.x)
        rng = np.random.default_rng(ctx.seed + 2)
        columns = [c.strip() for c in cfg.param("request_columns").split(",") if c.strip()]
        lacking = [c for c in columns if c not in ctx.data.columns]
        if lacking:
            raise ValueError(f"request_columns not in the dataset: {', '.join(lacking)}")
        source = ctx.data[columns] if columns else ctx.x
        frames = [source.iloc[rng.choice(n, size=rows, replace=n < rows)] for _ in range(64)]
        load: LoadResult = ctx.deployments.load_test(
            name, frames, concurrency=max(cfg.param("concurrency"), 1),
            duration_s=cfg.param("load_duration_s"), max_requests=cfg.param("requests"))
        total = load.requests
        lat_ms = np.array(load.latencies_s) * 1000
        p50, p95, p99 = ((float(v) for v in np.percentile(lat_ms, [50, 95, 99])) if len(lat_ms)
                         else (np.nan, np.nan, np.nan))
        per_s = total / load.wall_s if load.wall_s > 0 else np.nan
        error_rate = load.errors / total if total else np.nan
        fallback_rate = load.fallbacks / len(lat_ms) if len(lat_ms) else np.nan
        subject = f"deployment={name}"
        measurements = [
            Measurement("p50_ms", p50, subject), Measurement("p95_ms", p95, subject),
            Measurement("p99_ms", p99, subject), Measurement("requests", float(total), subject),
            Measurement("requests_per_s", per_s, subject),
            Measurement("rows_per_s", per_s * rows, subject),
            Measurement("errors", float(load.errors), subject),
            Measurement("error_rate", error_rate, subject),
            Measurement("fallbacks", float(load.fallbacks), subject),
            Measurement("fallback_rate", fallback_rate, subject),
            Measurement("concurrency", float(cfg.param("concurrency")), subject),
        ]
        if total == 0:
            raise RuntimeError(f"no request was sent to deployment {name!r}")
        judge.apply("max_p50_ms", p50, subject)
        judge.apply("max_p99_ms", p99, subject)
        judge.apply("min_requests_per_s", per_s, subject)
        judge.apply("max_error_rate", error_rate, subject)
        judge.apply("max_fallback_rate", fallback_rate, subject)
        findings = [(f"measured: deployment {name!r} through serving (OIP gRPC), "
                    f"concurrency {cfg.param('concurrency')}, {rows} row(s) per request")]
        findings += [f"errors {code}: {count}" for code, count in sorted(load.error_codes.items())]
        findings += [f"fallbacks {reason}: {count}"
                     for reason, count in sorted(load.fallback_reasons.items())]
        findings += [f"answered by version {v}: {count}"
                     for v, count in sorted(load.versions.items())]
        message = (f"deployment {name}: {total} requests in {load.wall_s:.1f} s, "
                   f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {load.errors} errors, "
                   f"{load.fallbacks} fallbacks")
        return judge.result(self.name, measurements=measurements, findings=findings,
                            message=message)

    def _in_process(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
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
            measurements += [Measurement("p50_ms", p50, subject),
                             Measurement("p95_ms", p95, subject),
                             Measurement("p99_ms", p99, subject),
                             Measurement("rows_per_s", rows_per_s, subject),
                             Measurement("calls", float(len(lat_ms)), subject)]
            for spec in self.thresholds:
                if spec.name.endswith(f"_batch_{batch}"):
                    value = p99 if spec.name.startswith("max_p99") else rows_per_s
                    judge.apply(spec.name, value, subject)
        return judge.result(self.name, measurements=measurements,
                            findings=["measured: in-process predict (no deployment named)"])
