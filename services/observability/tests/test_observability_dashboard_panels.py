"""The model page's time-range and version selectors, the over-time chart's bucket
chosen from the range, the "why is it worse" panel (root cause against the
validation baseline; two versions in the range compared with intervals), recent
predictions and the prediction lineage page (issue #17 item 5).

Drawn in headless Chromium; ``MODELPLANE_SCREENSHOT_DIR`` keeps the screenshots.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelplane.kit.auth import Role, add_key
from modelplane.kit.errors import InvalidArgument
from modelplane.kit.settings import ServiceSettings
from modelplane.observability import metrics as M
from modelplane.observability.dashboard_params import (
    PageRange,
    choose_bucket,
    parse_range,
    window_for,
)
from modelplane.observability.evaluations import Baseline
from modelplane.observability.lineage import (
    DatasetInfo,
    LineagePeers,
    PeerError,
    ValidationRef,
    VersionInfo,
)
from modelplane.observability.records import Actual, Environment, EvaluationRecord, utcnow
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings

MODEL = "churn"


def test_the_bucket_follows_the_time_range() -> None:
    assert choose_bucket(timedelta(hours=1)) == timedelta(minutes=1)  # 60 points
    assert choose_bucket(timedelta(hours=6)) == timedelta(minutes=10)  # 36
    assert choose_bucket(timedelta(days=1)) == timedelta(hours=1)  # 24, whole hours
    assert choose_bucket(timedelta(days=2)) == timedelta(hours=1)  # 48
    assert choose_bucket(timedelta(days=7)) == timedelta(hours=3)  # 56
    assert choose_bucket(timedelta(days=90)) == timedelta(days=2)  # 45
    for span in (timedelta(minutes=5), timedelta(hours=3), timedelta(days=3),
                 timedelta(days=30), timedelta(days=400)):
        assert span / choose_bucket(span) <= 60.5
    assert choose_bucket(timedelta(days=0.0417)) == timedelta(minutes=1)  # the quick link
    last = datetime(2026, 12, 7, 6, 17, 42, tzinfo=UTC)
    window, bucket = window_for(PageRange(days=1), last - timedelta(days=9), last)
    assert bucket == timedelta(hours=1)
    assert window.start == datetime(2026, 12, 6, 6, tzinfo=UTC)  # on the hour (profiles)
    assert window.end == last + timedelta(seconds=1)


@pytest.mark.parametrize(("params", "field"), [
    ({"days": "seven"}, "days"), ({"days": "0"}, "days"), ({"days": "-1"}, "days"),
    ({"days": "nan"}, "days"), ({"days": "100000"}, "days"),
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-12-07", "to": "2026-12-06"}, "to"),
    ({"days": "7", "from": "2026-12-01"}, "days"),
    ({"version": "9"}, "version"), ({"zoom": "2"}, "zoom")])
def test_bad_parameters_are_refused_with_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_range(params, ["1", "2"])
    assert err.value.message.startswith(f"{field}: ")


def test_good_parameters() -> None:
    r = parse_range({"from": "2026-12-01", "to": "2026-12-02T12:00+01:00", "version": "2",
                     "key": "k"}, ["1", "2"])
    assert r.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert r.end == datetime(2026, 12, 2, 11, tzinfo=UTC) and r.version == "2"
    assert parse_range({"days": "0.5"}, []).days == 0.5
    assert parse_range({}, []) == PageRange()


def _traffic(now: datetime) -> tuple[list[EvaluationRecord], list[Actual]]:
    """Validation records of both versions; production: v1 for two days, then v2 for
    a day, v2 broken for country ES."""
    rng = np.random.default_rng(7)
    recs, acts = [], []

    def add(pid: str, version: str, env: Environment, t: datetime, broken: bool) -> None:
        amount = float(rng.lognormal(3.0, 0.6))
        country = str(rng.choice(["FR", "DE", "ES", "IT"], p=[0.4, 0.3, 0.2, 0.1]))
        p = float(1 / (1 + np.exp(-(amount / 40 - 1.2))))
        y = int(rng.uniform() < p)
        pred = int(p > 0.5)
        if broken and country == "ES":
            pred = 1 - pred
        recs.append(EvaluationRecord(pid, MODEL, version, env, t,
                                     {"amount": amount, "country": country}, pred, {"1": p},
                                     {"deployment": "churn"}, trace_id=f"{len(recs):032x}"))
        acts.append(Actual(pid, y))

    for v in ("1", "2"):
        for i in range(800):
            add(f"val-{v}-{i}", v, Environment.VALIDATION,
                now - timedelta(days=6) + i * timedelta(seconds=60), False)
    start = now - timedelta(days=3)
    for i in range(2400):
        t = start + i * timedelta(seconds=108)  # three days
        v = "2" if t > now - timedelta(days=1) else "1"
        add(f"pred-{i:05d}", v, Environment.PRODUCTION, t, broken=v == "2")
    return recs, acts


class _Registry:
    async def model_version(self, model: str, version: str) -> VersionInfo:
        return VersionInfo(run_id="run-7f3a", experiment_id="12", dataset_id="ds-churn-3",
                           code_version="git:4be1c0d", aliases=["champion"],
                           validation=ValidationRef("rep-42", "PASSED", "all checks passed"))


class _Featurestore:
    async def dataset(self, dataset_id: str) -> DatasetInfo:
        return DatasetInfo(dataset_id, "churn-training", 3, "sha256:9c1e77ab", 48_000)


class _Serving:
    async def rollouts(self, deployment: str) -> list[object]:
        raise PeerError("serving at 127.0.0.1:1 is unavailable")

    async def events(self, rollout: str) -> list[object]:
        return []


@pytest.fixture(scope="module")
async def dashboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("obs-panels")
    keys = tmp / "api_keys.json"
    key = add_key(keys, "viewer", Role.READER)
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_API_KEYS_FILE": str(keys)})
    rt = ObservabilityRuntime(ObservabilitySettings(svc, http_addr="127.0.0.1:0",
                                                    monitor_tick_seconds=0,
                                                    serving_target=None))
    await rt.start()
    try:
        recs, acts = _traffic(utcnow())
        rt.ingestor.write_records(recs)
        rt.ingestor.write_actuals(acts)
        for v in ("1", "2"):
            rt.evaluations.set_baseline(Baseline(MODEL, v, metrics={M.Metric.ACCURACY: 0.8}))
        # registry and featurestore answer; the validator is not configured; serving fails
        rt.lineage_peers = LineagePeers(_Registry(), _Featurestore(), None,
                                        _Serving())  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{rt.http_port}", key
    finally:
        await rt.stop()


@asynccontextmanager
async def _client(base: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=120) as client:
        assert (await client.get("/", params={"key": key})).status_code == 303  # the cookie
        yield client


async def test_parameters_need_the_key_and_bad_ones_get_a_400_page(
        dashboard: tuple[str, str]) -> None:
    base, key = dashboard
    async with httpx.AsyncClient(base_url=base, follow_redirects=False) as anon:
        for path in (f"/models/{MODEL}?days=7", f"/models/{MODEL}?days=bad",
                     "/predictions?id=pred-00001", "/predictions/pred-00001"):
            r = await anon.get(path)
            assert r.status_code == 401 and "pred-00001" not in r.text, path
        # a ?key= login keeps the page's other parameters
        login = await anon.get(f"/models/{MODEL}", params={"key": key, "days": "7"})
        assert login.status_code == 303 and login.headers["location"] == \
            f"/models/{MODEL}?days=7"
    async with _client(base, key) as client:
        for query, says in (("days=seven", "days: &#x27;seven&#x27; is not a number"),
                            ("days=-3", "days: must be more than 0"),
                            ("from=2026-12-07&to=2026-12-01", "to: "),
                            ("from=noon", "from: &#x27;noon&#x27; is not an ISO 8601"),
                            ("version=9", "version: &#x27;9&#x27; is not a version"),
                            ("days=1&from=2026-12-01", "either days or from/to"),
                            ("colour=red", "colour: unknown parameter")):
            r = await client.get(f"/models/{MODEL}?{query}")
            assert r.status_code == 400, (query, r.text[-300:])
            assert "Bad request" in r.text and says in r.text, (query, r.text[-400:])
            assert "Traceback" not in r.text
        r = await client.get("/predictions?id=")
        assert r.status_code == 400 and "id: required" in r.text
        r = await client.get("/predictions/no-such-id")
        assert r.status_code == 404 and "is not in the evaluation store" in r.text
        assert (await client.get("/models/no-such-model?days=1")).status_code == 404


async def test_the_model_page_follows_its_range_and_version(dashboard: tuple[str, str]) -> None:
    base, key = dashboard
    async with _client(base, key) as client:
        whole = await client.get(f"/models/{MODEL}")
        assert whole.status_code == 200
        # three days of records: one point per 2 hours, 36 points; both versions, compared
        assert "accuracy per 2 hours" in whole.text
        assert len(re.findall(r"<title>accuracy \(with actuals\)", whole.text)) >= 30
        assert "id='compare-verdict'" in whole.text and "v2 minus v1" in whole.text
        day = await client.get(f"/models/{MODEL}?days=1")
        assert "accuracy per 1 hour" in day.text
        assert 20 <= len(re.findall(r"<title>accuracy \(with actuals\)", day.text)) <= 25
        assert "<b>last day</b>" in day.text  # the chosen range is marked
        hour = await client.get(f"/models/{MODEL}?days=0.0417")
        assert "per 1 minute" in hour.text
        v1 = await client.get(f"/models/{MODEL}?version=1")
        assert v1.status_code == 200 and "id='compare-verdict'" not in v1.text
        assert "<b>1</b>" in v1.text and "pred-0" in v1.text
        assert re.search(r"<td>2</td><td>\d{4}-", v1.text) is None  # no v2 predictions
        # the why panel: the root cause is country ES, against the validation baseline
        v2 = await client.get(f"/models/{MODEL}?version=2")
        why = v2.text[v2.text.index("id='why'"):v2.text.index("id='performance'")]
        assert "validation baseline of 2" in why and "worse" in why
        assert "country = &quot;ES&quot;" in why.split("</table>")[0]
        recent = v2.text[v2.text.index("id='recent'"):]
        assert "href='/predictions/pred-02399'" in recent
        assert "action='/predictions'" in recent


async def test_a_prediction_id_opens_its_lineage(dashboard: tuple[str, str]) -> None:
    base, key = dashboard
    async with _client(base, key) as client:
        found = await client.get("/predictions", params={"id": "pred-02399"})
        assert found.status_code == 303 and found.headers["location"] == "/predictions/pred-02399"
        page = await client.get("/predictions/pred-02399")
        assert page.status_code == 200
        for text in ("run-7f3a", "sha256:9c1e77ab", "rep-42", "PASSED", "git:4be1c0d",
                     "churn-training", "deployment", f"{2399 + 1600:032x}"):
            assert text in page.text, text
        # the registry's summary is shown, and said not to be the validator's report
        validation = page.text[page.text.index("id='validation'"):page.text.index("id='rollout'")]
        assert "rep-42" in validation and "full report is missing" in validation
        missing = page.text[page.text.index("id='missing'"):]
        assert "validation_report" in missing and "not configured in this service" in missing
        assert "serving at 127.0.0.1:1 is unavailable" in missing
        assert "href='/models/churn?version=2'" in page.text


@pytest.fixture(scope="module")
async def small_limits(tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[tuple[str, str]]:
    """The same traffic under small limits: past 300 records the evaluations answer
    from the profiles; an analysis may read 2000 records."""
    tmp = tmp_path_factory.mktemp("obs-panels-small")
    keys = tmp / "api_keys.json"
    key = add_key(keys, "viewer", Role.READER)
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_API_KEYS_FILE": str(keys)})
    rt = ObservabilityRuntime(ObservabilitySettings(
        svc, http_addr="127.0.0.1:0", monitor_tick_seconds=0, serving_target=None,
        exact_rows=300, max_analysis_rows=2000))
    await rt.start()
    try:
        recs, acts = _traffic(utcnow())
        rt.ingestor.write_records(recs)
        rt.ingestor.write_actuals(acts)
        for v in ("1", "2"):
            rt.evaluations.set_baseline(Baseline(MODEL, v, metrics={M.Metric.ACCURACY: 0.8}))
        yield f"http://127.0.0.1:{rt.http_port}", key
    finally:
        await rt.stop()


async def test_a_large_range_is_answered_from_profiles_and_over_budget_parts_say_so(
        small_limits: tuple[str, str]) -> None:
    async with _client(*small_limits) as client:
        page = await client.get(f"/models/{MODEL}?days=3")
        assert page.status_code == 200, page.text[-500:]
        assert "performance comes from the hourly profiles" in page.text
        assert "accuracy per 2 hours" in page.text
        assert len(re.findall(r"<title>accuracy \(with actuals\)", page.text)) >= 30
        why = page.text[page.text.index("id='why'"):page.text.index("id='performance'")]
        assert "(from the hourly profiles)" in why  # root cause chose the profiles
        assert "country = &quot;ES&quot;" in why
        # comparing versions reads the records: 2400 > 2000, said in the panel alone
        assert "version comparison (v2 against v1) unavailable" in why
        assert "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS" in why
        assert "id='recent'" in page.text and "pred-02399" in page.text
        small = await client.get(f"/models/{MODEL}?days=0.0417")  # 34 records: exact
        assert small.status_code == 200 and "hourly profiles" not in small.text
        assert "per 1 minute" in small.text


def test_the_lineage_page_shows_the_rollout_step_and_escapes() -> None:
    from modelplane.observability.dashboard_panels import render_lineage
    from modelplane.observability.lineage import PredictionLineage, RolloutAt

    t = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    rec = EvaluationRecord("p<1>", MODEL, "2", Environment.PRODUCTION, t, {"x": "<b>"}, 1)
    lin = PredictionLineage(rec, "churn", "canary", rollout=RolloutAt(
        "churn-v2", "churn", "challenger", 1, 25.0, "RUNNING", 4, t, "deployment"),
        rollout_note="matched by deployment")
    html = render_lineage(lin)
    assert "churn-v2" in html and "challenger" in html and "25%" in html
    assert "href='/rollouts/churn-v2'" in html and "#4 2026-12-07 05:30:00 UTC" in html
    assert "p&lt;1&gt;" in html and "<td>&lt;b&gt;</td>" in html and "<b>" not in html
    assert "Nothing missing" in html


def _shoot(url: str, shot: Path, profile: Path, height: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
         f"--screenshot={shot}", f"--window-size=1280,{height}", url],
        capture_output=True, text=True, timeout=120)


def _colours(shot: Path) -> tuple[int, int, int, int]:
    from PIL import Image

    px = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    red = int(np.sum((r > 180) & (g < 110) & (b < 110)))
    blue = int(np.sum((b > 180) & (r < 110) & (g < 150)))
    orange = int(np.sum((r > 200) & (g > 110) & (g < 160) & (b < 60)))
    header = int(np.sum((r < 50) & (g < 60) & (b > 50) & (b < 90)))
    return red, blue, orange, header


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="needs Debian's chromium (apt-get install -y chromium)")
async def test_the_panels_render_in_headless_chromium(dashboard: tuple[str, str],
                                                      tmp_path: Path) -> None:
    base, key = dashboard
    keep = os.environ.get("MODELPLANE_SCREENSHOT_DIR")
    model_shot, lineage_shot = tmp_path / "model.png", tmp_path / "lineage.png"
    proc = await asyncio.to_thread(_shoot, f"{base}/models/{MODEL}?key={key}&days=3",
                                   model_shot, tmp_path / "p1", 2000)
    assert model_shot.exists(), proc.stderr[-2000:]
    proc = await asyncio.to_thread(_shoot, f"{base}/predictions/pred-02399?key={key}",
                                   lineage_shot, tmp_path / "p2", 1000)
    assert lineage_shot.exists(), proc.stderr[-2000:]
    if keep:
        shutil.copy(model_shot, Path(keep) / "observability-model-panels.png")
        shutil.copy(lineage_shot, Path(keep) / "observability-lineage.png")
    red, blue, orange, header = _colours(model_shot)
    assert header > 10_000, "the page did not render (no header)"
    assert red > 800, "no red bars: the slices that explain the drop were not drawn"
    assert blue > 300, "no blue line: performance over time was not drawn"
    assert orange > 100, "no orange interval: the challenger version was not drawn"
    red, blue, orange, header = _colours(lineage_shot)
    assert header > 10_000, "the lineage page did not render (no header)"
