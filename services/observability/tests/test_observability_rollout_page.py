"""The dashboard's rollout page (issue #17): steps and weights over time, challenger
against champion per check with 95 % Wilson intervals, the proxy and operations
checks' numbers against their limits, the decision and why; linked
from the model page; says so when serving is not configured or not reachable.

Serving here is a stand-in gRPC server answering GetRollout, ListRolloutEvents and
ListRollouts with a rolled-back rollout (a real serving needs the registry and a
model; its rollout RPCs are tested in tests/test_rollout_registry.py). Drawn in
headless Chromium; ``MODELPLANE_SCREENSHOT_DIR`` keeps the screenshot.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.duration_pb2 import Duration

from modelplane.kit.settings import ServiceSettings
from modelplane.observability.dashboard import wilson
from modelplane.observability.records import Actual, Environment, EvaluationRecord, utcnow
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.serving.v1 import serving_pb2 as spb
from modelplane.serving.v1 import serving_pb2_grpc

MODEL = "fraud-detector"
T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def _ts(t: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(t)
    return ts


def _rollout() -> spb.Rollout:
    cities = {"berlin": (1400, 0.86, 470, 0.87), "lyon": (1000, 0.85, 330, 0.86),
              "paris": (900, 0.84, 310, 0.61), "oslo": (500, 0.85, 160, 0.84)}
    slices = [spb.RolloutSliceEvidence(
        feature="city", value=c, champion_labeled=n0, champion_value=p0,
        challenger_labeled=n1, challenger_value=p1, difference=p1 - p0,
        likelihood_ratio=310.0 if c == "paris" else 0.4, threshold=80.0)
        for c, (n0, p0, n1, p1) in cities.items()]
    return spb.Rollout(
        name="fraud-v2", deployment="fraud", model=MODEL,
        challenger=spb.ModelTarget(version="2"), champion_alias="champion",
        steps=[spb.RolloutStep(weight=w) for w in (5, 25, 50)],
        analysis=spb.RolloutAnalysis(checks=[
            spb.RolloutCheck(quality=spb.QualityCheck(margin=0.02)),
            spb.RolloutCheck(slice=spb.SliceCheck(feature="city", margin=0.05)),
            spb.RolloutCheck(proxy=spb.ProxyCheck(max_prediction_drift=0.1, min_records=500)),
            spb.RolloutCheck(operations=spb.OperationsCheck(min_requests=200))], alpha=0.05),
        state=spb.ROLLOUT_STATE_ROLLED_BACK, current_step=1,
        state_message="rolled back: in the slice city = 'paris', challenger accuracy 0.6100 "
        "(n=310) is worse than the champion's 0.8400 (n=900) by more than the margin 0.05: "
        "likelihood ratio 310 >= 80 (4 slice values, alpha/4)",
        challenger_version="2", champion_version="1",
        evidence=spb.RolloutEvidence(
            time=_ts(T0 + timedelta(minutes=50)), champion_labeled=3800, champion_value=0.85,
            challenger_labeled=1270, challenger_value=0.81, difference=-0.04,
            likelihood_ratio=3.1, threshold=20.0, slices=slices,
            proxy=spb.RolloutProxyEvidence(champion_records=5200, challenger_records=1700,
                                           prediction_drift=0.0412, drift_threshold=0.1),
            operations=spb.RolloutOperationsEvidence(
                champion_requests=5200, challenger_requests=1700, champion_error_rate=0.001,
                challenger_error_rate=0.0012, error_likelihood_ratio=0.3,
                champion_latency_p99=Duration(nanos=12_300_000),
                challenger_latency_p99=Duration(nanos=14_100_000),
                latency_bound=Duration(nanos=23_450_000), challenger_over_bound=0.002,
                threshold=60.0)),
        create_time=_ts(T0), update_time=_ts(T0 + timedelta(minutes=50)), revision=9)


EVENTS = [(0, "CREATED", 5.0, "started by alice: v2 against @champion (v1) at 5%"),
          (1, "WAITING", 5.0, "step 0 (5%): 1140s of its minimum duration left"),
          (20, "STEP_STARTED", 25.0, "step 0 (5%) met its minimums; advancing to 25%"),
          (50, "ROLLED_BACK", 0.0, "rolled back: in the slice city = 'paris' ..."),
          (50, "ALERT", 0.0, "alert raised in observability (source rollout/fraud-v2)")]


class StandInServing(serving_pb2_grpc.ServingServiceServicer):
    async def GetRollout(self, request: Any, context: Any) -> spb.Rollout:
        if request.name != "fraud-v2":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"rollout {request.name!r} not found")
        return _rollout()

    async def ListRollouts(self, request: Any, context: Any) -> spb.ListRolloutsResponse:
        return spb.ListRolloutsResponse(rollouts=[_rollout()])

    async def ListRolloutEvents(self, request: Any, context: Any
                                ) -> spb.ListRolloutEventsResponse:
        return spb.ListRolloutEventsResponse(events=[spb.RolloutEvent(
            rollout="fraud-v2", sequence=i + 1, time=_ts(T0 + timedelta(minutes=m)),
            type=spb.RolloutEventType.Value(f"ROLLOUT_EVENT_TYPE_{t}"),
            state=spb.ROLLOUT_STATE_ROLLED_BACK if w == 0 else spb.ROLLOUT_STATE_RUNNING,
            weight=w, message=msg, actor="controller:1")
            for i, (m, t, w, msg) in enumerate(EVENTS)])


async def _runtime(tmp: Path, serving_target: str | None) -> ObservabilityRuntime:
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"})
    rt = ObservabilityRuntime(ObservabilitySettings(
        svc, http_addr="127.0.0.1:0", monitor_tick_seconds=0, serving_target=serving_target))
    await rt.start()
    rng = np.random.default_rng(0)
    now = utcnow()
    recs, acts = [], []
    for i in range(400):
        y = int(rng.uniform() < 0.3)
        recs.append(EvaluationRecord(f"p-{i}", MODEL, "1", Environment.PRODUCTION,
                                     now - timedelta(minutes=400 - i),
                                     {"city": str(rng.choice(["paris", "lyon"]))},
                                     y if rng.uniform() < 0.85 else 1 - y))
        acts.append(Actual(f"p-{i}", y))
    rt.ingestor.write_records(recs)
    rt.ingestor.write_actuals(acts)
    return rt


@pytest.fixture(scope="module")
async def page(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    server = grpc.aio.server()
    serving_pb2_grpc.add_ServingServiceServicer_to_server(StandInServing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    rt = await _runtime(tmp_path_factory.mktemp("obs-rollout"), f"127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{rt.http_port}"
    finally:
        await rt.stop()
        await server.stop(0)


def test_the_wilson_interval_is_the_textbook_one() -> None:
    lo, hi = wilson(100, 0.8)
    assert (round(lo, 4), round(hi, 4)) == (0.7112, 0.8666)
    assert wilson(0, 0.0) == (0.0, 1.0)


async def test_the_rollout_page_shows_steps_checks_and_the_decision(page: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{page}/rollouts/fraud-v2")
        model = await client.get(f"{page}/models/{MODEL}")
        missing = await client.get(f"{page}/rollouts/nope")
    assert r.status_code == 200
    html = r.text
    assert "Rollout fraud-v2" in html and "rolled back" in html
    assert "city = &#x27;paris&#x27;, challenger accuracy 0.6100" in html  # the decision, why
    assert "share of traffic" in html and "<polyline" in html        # weights over time
    assert "Wilson" in html and html.count("<circle") >= 10           # 5 checks x 2 sides
    for check in ("overall", "city = berlin", "city = paris", "city = oslo"):
        assert check in html
    assert "worse than the margin" in html and "not decided" in html
    assert "step_started" in html and "alert raised in observability" in html
    # the proxy and operations checks' numbers, with their limits
    assert "id='signals'" in html and "prediction drift (Jensen-Shannon)" in html
    assert "<td>0.0412</td><td>&lt;= 0.1</td>" in html
    assert "<td>12.3 ms</td><td>14.1 ms</td><td>&lt;= 23.4 ms (0.20% of requests above)" \
        in html
    assert "only roll back or hold" in html
    assert "href='/rollouts/fraud-v2'" in model.text                   # linked from the model
    assert "serving has no rollout" in missing.text


async def test_without_serving_the_pages_say_so(tmp_path: Path) -> None:
    for target, words in ((None, "serving is not configured"),
                          ("127.0.0.1:1", "is not reachable")):
        rt = await _runtime(tmp_path / (target or "none").replace(":", "_"), target)
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.get(f"http://127.0.0.1:{rt.http_port}/rollouts/fraud-v2")
                m = await client.get(f"http://127.0.0.1:{rt.http_port}/models/{MODEL}")
            assert r.status_code == 200 and words in r.text
            assert m.status_code == 200 and words in m.text  # the model page still renders
        finally:
            await rt.stop()


async def test_the_rollout_page_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "rollout.png"
    proc = await asyncio.to_thread(
        subprocess.run,
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1280,1000", f"{page}/rollouts/fraud-v2"],
        capture_output=True, text=True, timeout=90)
    assert shot.exists(), proc.stderr[-2000:]
    keep = os.environ.get("MODELPLANE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "observability-rollout.png")
    px = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    orange = np.sum((r > 200) & (g > 110) & (g < 165) & (b < 70))  # weights, challenger
    red = np.sum((r > 180) & (g < 110) & (b < 110))                # the rolled-back pill
    grey = np.sum((abs(r - 154) < 8) & (abs(g - 163) < 8) & (abs(b - 173) < 8))  # champion
    header = np.sum((r < 50) & (g < 60) & (b > 50) & (b < 90))
    assert header > 10_000, "the page did not render (no header)"
    assert orange > 800, "no orange: the weight line / challenger intervals were not drawn"
    assert grey > 200, "no grey: the champion intervals were not drawn"
    assert red > 150, "no red: the rolled back state was not shown"


def test_a_mae_rollout_page_reads_lower_as_better() -> None:
    """A regressor's rollout (ROLLOUT_METRIC_MAE): the values are errors in the
    target's units, not shares. The better challenger (MAE 7.5 against 8.0, serving's
    difference +0.5) reads as non-inferior, the axis is not cut at 1, and no Wilson
    interval (a share's) is drawn."""
    from modelplane.observability.adapters.rollout_pages import _summary
    from modelplane.observability.dashboard import render_rollout

    m = spb.Rollout(
        name="price-v2", deployment="price", model="price-model",
        challenger=spb.ModelTarget(version="2"),
        steps=[spb.RolloutStep(weight=w) for w in (10, 50)],
        analysis=spb.RolloutAnalysis(checks=[spb.RolloutCheck(quality=spb.QualityCheck(
            metric=spb.ROLLOUT_METRIC_MAE, margin=0.4))], alpha=0.05),
        state=spb.ROLLOUT_STATE_PROMOTED, champion_version="1", challenger_version="2",
        evidence=spb.RolloutEvidence(
            time=_ts(T0), champion_labeled=900, champion_value=8.0, challenger_labeled=700,
            challenger_value=7.5, difference=0.5, likelihood_ratio=400.0, threshold=20.0))
    summary = _summary(m)
    assert summary.metric == "MAE" and not summary.share_metric
    html = render_rollout(summary, [], T0)
    assert "MAE per check (lower is better)" in html and "Wilson" not in html
    assert "<td>+0.5000</td><td>0.4</td>" in html and "non-inferior" in html
    assert 'fill="#555">8.03<' in html  # the axis spans 7.5..8.0, not cut at 1
    # precision of a class is a share: Wilson intervals, the class named
    m.analysis.checks[0].quality.metric = spb.ROLLOUT_METRIC_PRECISION
    m.analysis.checks[0].quality.positive_class = "fraud"
    m.evidence.champion_value, m.evidence.challenger_value = 0.80, 0.85
    m.evidence.difference = 0.05
    precision = render_rollout(_summary(m), [], T0)
    assert "Precision of class &#x27;fraud&#x27; per check" in precision
    assert "Wilson" in precision
