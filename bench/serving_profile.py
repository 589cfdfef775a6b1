"""Where serving's CPU goes per request, from a py-spy profile of bench/serving.py.

    uv run python bench/serving.py --sides a --profile /tmp/prof     # py-spy --gil, per round
    uv run python bench/serving_profile.py /tmp/prof/a-round1.txt --requests N --seconds S

Each sample (py-spy ``--format raw``: one stack per line, frames root first, then a
count) goes to the first category, from the innermost frame outwards, whose pattern
one of its frames contains; what matches nothing is "other". With ``--requests`` and
``--seconds`` (the round's request count and length, printed by bench/serving.py) the
shares become microseconds per request, at ``--rate`` samples a second (the bench
records at 200). With ``--gil`` profiles these are microseconds holding the GIL, which
is what bounds a single-process server.
"""

from __future__ import annotations

import argparse
from collections import Counter

#: (category, frame substrings), innermost match wins; the order breaks ties in a frame
#: grpc.aio's Cython core (HTTP/2 framing, protobuf parse and serialize, handler dispatch)
#: runs as callbacks of the event loop; on uvloop both are one C frame to py-spy
GRPC = "gRPC server and event loop (Cython/C: framing, protobuf, dispatch, callbacks)"
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    # an interceptor's intercept_service awaits grpc's handler lookup (Cython)
    (GRPC, ("Interceptor.intercept_service",)),
    ("prediction id", ("_PredictionIds.next",)),
    ("model call (predict)", ("LinearClassifierMixin.", "sklearn/")),
    ("hand-off to the model's worker threads and back",
     ("PredictionWorkers.", "call_soon_threadsafe", "_read_from_self", "_write_to_self",
      "ServableModel.predict", "ServableModel.check_output", "_expire", "call_later")),
    ("prediction log: record build + write-ahead log",
     ("PredictionLogger.log", "encode_record", "write_ahead_log.py")),
    ("prediction log: shipping (read back, Arrow, LogRecords)",
     ("PredictionLogger.", "ObservabilitySink", "log_columns.py", "decode_record",
      "grpc/aio/_call.py", "concurrent/futures/thread.py")),
    ("serving and RPC metrics (Prometheus)", ("prometheus_client", "RpcMetrics")),
    ("tracing (OpenTelemetry span and context)",
     ("OpenTelemetry", "opentelemetry", "trace/__init__.py", "_trace_context",
      "context/__init__.py", "attributes/__init__.py", "sampling.py", "_decorator.py",
      "propagat", "tracecontext")),
    ("routing and access (router, breaker, rights)",
     ("TrafficRouter", "CircuitBreaker", "check_infer", "LoadedModels.runtime", "may (")),
    ("request parsing (tensors, parameters, metadata)",
     ("decode_inputs", "oip_tensors.py", "_param_value", "invocation_metadata")),
    ("response build", ("output_raw", "_set_param")),
    ("data plane and servicer code", ("predictor.py", "loaded_models.py", "oip_grpc.py")),
    ("kit guard (principal, error mapping)", ("_Guard", "kit/server.py", "contextlib.py")),
    (GRPC, ("Handle._run", "intercept_service", "grpc/")),
    (GRPC, ("asyncio/", "selectors.py", "uvloop")),
]


def categorize(path: str) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not n.isdigit():
                continue
            samples = int(n)
            total += samples
            frames = stack.split(";")[1:]  # the first entry names the process
            category = "other"
            for frame in reversed(frames):
                hit = next((name for name, keys in CATEGORIES
                            if any(k in frame for k in keys)), None)
                if hit is not None:
                    category = hit
                    break
            counts[category] += samples
    return counts, total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("profile")
    p.add_argument("--requests", type=int, default=0)
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=200.0)
    args = p.parse_args()
    counts, total = categorize(args.profile)
    print(f"{total} samples")
    for name, n in counts.most_common():
        per = (f"{n / args.rate / args.requests * 1e6:8.0f} us/request"
               if args.requests else "")
        print(f"{100 * n / total:6.1f} %{per}  {name}")


if __name__ == "__main__":
    main()
