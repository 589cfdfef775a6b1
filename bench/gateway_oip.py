"""OIP REST inference through the gateway vs straight to serving's REST listener.

    uv run modelplane up --detach --demo --data-dir DIR     # a platform with the demo's model
    uv run python bench/gateway_oip.py --data-dir DIR [--requests 2000 --concurrency 8]

Both sides send the same ``POST /v2/models/fraud-detector/infer`` (JSON tensors,
one row, online features fetched by serving) with the admin key, from a minimal
keep-alive HTTP/1.1 client on asyncio streams (one connection per concurrent
worker), in alternating rounds; prints throughput, latency percentiles, the CPU
seconds the gateway process used, and the ratio through/direct.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from keepalive import timed_requests
from local_processes import cpu_seconds

MODEL = "fraud-detector"


def _body(customer_id: int) -> bytes:
    row = {"customer_id": ("INT64", customer_id), "amount": ("FP64", 42.5),
           "merchant_category": ("BYTES", "online"), "hour": ("INT64", 23),
           "city": ("BYTES", "Paris")}
    return json.dumps({"inputs": [{"name": n, "datatype": t, "shape": [1], "data": [v]}
                                  for n, (t, v) in row.items()]}).encode()


async def _worker(address: str, key: str, body: bytes, count: int,
                  latencies: list[float]) -> None:
    host, _, port = address.rpartition(":")
    request = (f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: {address}\r\n"
               f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def check(status: int, answer: bytes) -> None:
        assert status == 200 and json.loads(answer)["model_name"] == MODEL, \
            (status, answer[:200])

    await timed_requests(host, int(port), request, count, latencies, check)


async def _round(address: str, key: str, body: bytes, requests: int, concurrency: int
                 ) -> tuple[float, list[float]]:
    latencies: list[float] = []
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0)
              for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(_worker(address, key, body, n, latencies) for n in shares))
    return time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from modelplane.cli.platform import Platform

    platform = Platform.load(args.data_dir)
    assert platform is not None, f"no platform in {args.data_dir}"
    key = (args.data_dir / "admin.key").read_text().strip()
    # a customer the demo put in the online store (serving fetches its features)
    summary = json.loads((args.data_dir / "demo" / "summary.json").read_text())
    body = _body(int(summary["traffic"]["customer_id"]))
    sides = {"direct": platform.serving_http_url.split("//", 1)[1].rstrip("/"),
             "gateway": platform.gateway_url.split("//", 1)[1].rstrip("/")}
    gateway_pid = platform.pids["gateway"]
    asyncio.run(_round(sides["direct"], key, body, 200, args.concurrency))  # warm up both
    asyncio.run(_round(sides["gateway"], key, body, 200, args.concurrency))
    totals: dict[str, list[float]] = {s: [] for s in sides}
    elapsed = dict.fromkeys(sides, 0.0)
    gw_cpu = dict.fromkeys(sides, 0.0)
    for _ in range(args.rounds):
        for side, address in sides.items():
            cpu0 = cpu_seconds(gateway_pid)
            seconds, lat = asyncio.run(_round(address, key, body, args.requests, args.concurrency))
            gw_cpu[side] += cpu_seconds(gateway_pid) - cpu0
            elapsed[side] += seconds
            totals[side] += lat
    rates = {}
    for side in sides:
        lat = sorted(totals[side])
        rates[side] = len(lat) / elapsed[side]
        print(f"{side:8} {rates[side]:7.0f} req/s  p50 {statistics.median(lat) * 1e3:6.1f} ms  "
              f"p99 {lat[int(len(lat) * 0.99)] * 1e3:6.1f} ms  gateway CPU "
              f"{gw_cpu[side] / len(lat) * 1e3:.2f} ms/request")
    print(f"ratio gateway/direct: {rates['gateway'] / rates['direct']:.2f}")


if __name__ == "__main__":
    main()
