"""The model page shows the analysis API's numbers for its window, whether they
come from the records (a small range) or the hourly profiles (a large one), on
the embedded store and on PostgreSQL; its per-window cache sees new records at
once, on every replica, and new actuals within its time to live (#15 item 7)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelplane.kit.settings import ServiceSettings
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.dashboard import ModelPageCache, build_model_view
from modelplane.observability.dashboard_params import parse_range, window_for
from modelplane.observability.drift import DriftMethod
from modelplane.observability.evaluations import Baseline, Reference
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    TimeWindow,
    describe_slice,
)
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings

MODEL = "loans"
#: the last production record's time; records every 108 s for three days before it
LAST = datetime(2026, 11, 20, 11, 58, 12, tzinfo=UTC)
STEP = timedelta(seconds=108)
PRODUCTION = 2400
#: the production records left without an actual (an actual arrives later in a test)
UNLABELED = range(1000, 1010)
COUNTRY = ColumnRef(ColumnSource.FEATURE, "country")
POINT = re.compile(r"<title>accuracy \(with actuals\) (\d{4}-\d\d-\d\d \d\d:\d\d): ([^<]+)</title>")
BAR = re.compile(r"<title>([^<:]+): (\S+) ([^<]*)</title></rect>")


def _record(rng: np.random.Generator, pid: str, env: Environment, t: datetime,
            late: bool) -> tuple[EvaluationRecord, Actual]:
    amount = float(rng.lognormal(3.4 if late else 3.0, 0.6))
    country = str(rng.choice(["FR", "DE", "ES", "IT"], p=[0.4, 0.3, 0.2, 0.1]))
    p = float(1 / (1 + np.exp(-(amount / 40 - 1.2))))
    pred = int(p > 0.5)
    y = int(rng.uniform() < p)
    if late and country == "ES":
        y = 1 - pred  # wrong for Spain in the last day
    return (EvaluationRecord(pid, MODEL, "1", env, t, {"amount": amount, "country": country},
                             pred, {"1": p}), Actual(pid, y))


def _traffic() -> tuple[list[EvaluationRecord], list[Actual]]:
    rng = np.random.default_rng(11)
    recs, acts = [], []
    for i in range(800):
        r, a = _record(rng, f"val-{i}", Environment.VALIDATION,
                       LAST - timedelta(days=6) + i * timedelta(seconds=60), False)
        recs.append(r)
        acts.append(a)
    first = LAST - (PRODUCTION - 1) * STEP
    for i in range(PRODUCTION):
        t = first + i * STEP
        r, a = _record(rng, f"p-{i:05d}", Environment.PRODUCTION, t, t > LAST - timedelta(days=1))
        recs.append(r)
        if i not in UNLABELED:
            acts.append(a)
    return recs, acts


@dataclass
class Replica:
    rt: ObservabilityRuntime
    base: str


async def _replica(tmp: Path, db: str | None) -> Replica:
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off"})
    # past 300 records a side, the evaluations (and so the page) answer from profiles
    rt = ObservabilityRuntime(ObservabilitySettings(
        svc, database_url=db, http_addr="127.0.0.1:0", monitor_tick_seconds=0,
        serving_target=None, exact_rows=300))
    await rt.start()
    return Replica(rt, f"http://127.0.0.1:{rt.http_port}")


@pytest.fixture(scope="module", params=["embedded", "postgres"])
async def replicas(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                   ) -> AsyncIterator[list[Replica]]:
    """One runtime on the embedded store; two replicas on one PostgreSQL database."""
    tmp = tmp_path_factory.mktemp(f"obs-figures-{request.param}")
    db = None
    if request.param == "postgres":
        make: Callable[[str], str] = request.getfixturevalue("make_postgres_database")
        db = make("mp_obs_figures")
    out = [await _replica(tmp / "a", db)]
    if db is not None:
        out.append(await _replica(tmp / "b", db))
    try:
        recs, acts = _traffic()
        out[0].rt.ingestor.write_records(recs)
        out[0].rt.ingestor.write_actuals(acts)
        out[0].rt.evaluations.set_baseline(Baseline(MODEL, "1",
                                                    metrics={M.Metric.ACCURACY: 0.8}))
        yield out
    finally:
        for r in out:
            await r.rt.stop()


def _window(params: dict[str, str]) -> tuple[EvaluationFilter, timedelta]:
    """The page's window, from its parameters and the records' known first and last
    times (not from the store)."""
    window, bucket = window_for(parse_range(params, ["1"]),
                                LAST - (PRODUCTION - 1) * STEP, LAST)
    return EvaluationFilter(MODEL, (), Environment.PRODUCTION, window), bucket


def _points(html: str) -> dict[str, str]:
    return dict(POINT.findall(html))


def _bars(html: str, section: str) -> dict[str, str]:
    part = html[html.index(f"id='{section}'"):]
    part = part[:part.index("</section>")]
    return {unescape(label): value for label, value, _ in BAR.findall(part)}


async def _page(base: str, params: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        page = await client.get(f"/models/{MODEL}", params=params)
    assert page.status_code == 200, page.text[-800:]
    return page.text


@pytest.mark.parametrize("params, mode", [({"days": "3"}, AnalysisMode.PROFILE),
                                          ({"days": "0.25"}, AnalysisMode.EXACT)])
async def test_the_model_page_shows_the_analysis_apis_figures_for_its_window(
        replicas: list[Replica], params: dict[str, str], mode: AnalysisMode) -> None:
    rt, base = replicas[0].rt, replicas[0].base
    ev = rt.evaluations
    html = await _page(base, params)
    live, bucket = _window(params)
    perf = ev.performance(live, bucket=bucket, slice_by=[COUNTRY])
    assert perf.mode is mode
    # the over-time chart: one point per bucket with actuals, the API's accuracy
    want = {f"{g.window.start:%Y-%m-%d %H:%M}": f"{g.metrics[M.Metric.ACCURACY]:.3g}"
            for g in perf.windows if g.window and g.window.start
            and g.metrics.get(M.Metric.ACCURACY) is not None}
    assert len(want) >= 5 and _points(html) == want
    assert f"{perf.overall.labeled_count} with actuals in the range shown" in html
    # worst slices: every country with 30 labeled records, the API's value and count
    shown = _bars(html, "slices")
    countries = {describe_slice(list(g.slice or ())): g for g in perf.slices
                 if g.labeled_count >= 30}
    for label, g in countries.items():
        assert shown[label] == f"{g.metrics[M.Metric.ACCURACY]:.3g}", label
    assert set(countries) <= set(shown)
    # drift per feature: the range's last day against the version's validation baseline
    start, end = live.window.start, live.window.end
    assert start is not None and end is not None
    day = EvaluationFilter(MODEL, (), Environment.PRODUCTION,
                           TimeWindow(max(start, end - timedelta(days=1)), end))
    drift = ev.drift(day, Reference(baseline=(MODEL, "1")))
    bars = _bars(html, "drift")
    for c in drift.columns:
        stat = c.drift.statistic(c.drift.decision_method)
        assert stat is not None
        value = stat.value if stat.method not in (DriftMethod.KS, DriftMethod.CHI_SQUARE) \
            else 1 - (stat.p_value or 0)
        assert bars[str(c.column)] == f"{value:.3g}", c.column
    # the why panel's headline: the root cause asked as the page asks it (a profiled
    # range by single categorical slices; else every column, pairs too)
    profiled = mode is AnalysisMode.PROFILE
    rc = ev.root_cause(live, Reference(baseline=(MODEL, "1")), M.Metric.ACCURACY,
                       columns=[COUNTRY] if profiled else [], max_slices=5,
                       max_depth=1 if profiled else 2)
    assert (f"<b>{rc.current_value:.3f}</b> in this range against "
            f"<b>{rc.reference_value:.3f}</b>") in html
    assert ("performance comes from the hourly profiles" in html) is (
        mode is AnalysisMode.PROFILE)


async def test_every_replica_sees_a_new_record_at_once_and_an_actual_within_the_ttl(
        replicas: list[Replica]) -> None:
    """A fixed from/to window (so that a new record does not move it): a page cached
    on the last replica shows a record stored through the first one on its next
    load; an actual, which moves no profile count, shows once the entry expires."""
    writer, reader = replicas[0], replicas[-1]
    params = {"from": (LAST - timedelta(days=2)).isoformat(),
              "to": (LAST - timedelta(hours=2)).isoformat()}
    live, _ = _window(params)
    labeled = ev_labeled(reader.rt, live)
    before = await _page(reader.base, params)
    assert f"{labeled} with actuals in the range shown" in before
    assert await _page(reader.base, params) == before  # loaded again: the same page
    rng = np.random.default_rng(5)
    t = LAST - timedelta(days=1, minutes=1)
    rec, act = _record(rng, "p-late-arrival", Environment.PRODUCTION, t, False)
    writer.rt.ingestor.write_records([rec])
    writer.rt.ingestor.write_actuals([act])
    after = await _page(reader.base, params)
    assert f"{labeled + 1} with actuals in the range shown" in after

    # an actual alone: the entry is kept until it expires (a clock of the test's)
    now = [0.0]
    cache = ModelPageCache(ttl_seconds=60, clock=lambda: now[0])
    first = build_model_view(reader.rt, MODEL, params, cache)
    assert build_model_view(reader.rt, MODEL, params, cache).analyses is first.analyses
    late = UNLABELED[0]  # in the window: 42 hours before LAST
    assert live.window.start <= LAST - (PRODUCTION - 1 - late) * STEP  # type: ignore[operator]
    writer.rt.ingestor.write_actuals([Actual(f"p-{late:05d}", 1)])
    now[0] = 59.0
    stale = build_model_view(reader.rt, MODEL, params, cache)
    assert stale.analyses is first.analyses and f"{labeled + 1} with actuals" in stale.meta
    now[0] = 60.0
    fresh = build_model_view(reader.rt, MODEL, params, cache)
    assert fresh.analyses is not first.analyses
    assert f"{labeled + 2} with actuals" in fresh.meta
    assert ev_labeled(reader.rt, live) == labeled + 2


def ev_labeled(rt: ObservabilityRuntime, live: EvaluationFilter) -> int:
    return rt.evaluations.performance(live).overall.labeled_count


def test_the_page_cache_keeps_the_newest_entries_and_nothing_at_a_ttl_of_0() -> None:
    from modelplane.observability.dashboard import PageAnalyses

    def entry(n: int) -> PageAnalyses:
        return PageAnalyses("", "", "", [], False, n, M.Metric.ACCURACY)

    cache = ModelPageCache(ttl_seconds=60, entries=2, clock=lambda: 0.0)
    for k in (1, 2, 3):
        cache.put((k,), entry(k))
    assert cache.get((1,)) is None
    assert cache.get((2,)) is not None and cache.get((3,)) is not None
    off = ModelPageCache(ttl_seconds=0)
    off.put((1,), entry(1))
    assert off.get((1,)) is None
