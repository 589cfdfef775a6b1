"""The web dashboard: per model, performance over time, drift per feature,
worst slices and alerts, drawn as inline SVG (no script, no CDN).

Protected by the service's API keys (any role): ``?key=KEY`` once, or
``Authorization: Bearer KEY``. A ``?key=`` login is answered with a redirect
that sets a session cookie (HttpOnly, SameSite=Strict): a random token whose
hash maps, in the evaluation store, to the key's hash and an expiry. Sessions
live in the store so that every replica behind a load balancer knows them. The
cookie never holds the key, the store never holds the token, and every request
checks the key again, so a revoked or expired key ends its sessions at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from modelplane.kit.auth import ApiKeyStore, bearer_token
from modelplane.kit.errors import InvalidArgument, ModelplaneError, NotFound
from modelplane.observability import metrics as M
from modelplane.observability.adapters.rollout_pages import (
    RolloutEventView,
    RolloutSummary,
    ServingUnavailable,
)
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.charts import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    Bar,
    Interval,
    Mark,
    Series,
    bar_chart,
    interval_chart,
    line_chart,
    timeline,
)
from modelplane.observability.dashboard_panels import (
    WhyView,
    render_lineage,
    render_why,
    why_compare,
    why_root_cause,
)
from modelplane.observability.dashboard_params import (
    QUICK_RANGES,
    PageRange,
    describe_bucket,
    parse_range,
    window_for,
)
from modelplane.observability.drift import DriftMethod
from modelplane.observability.evaluations import Baseline, Reference
from modelplane.observability.lineage import load_record, prediction_lineage
from modelplane.observability.monitors import AlertState
from modelplane.observability.reader import SharedFrames, shared_frames
from modelplane.observability.records import (
    ColumnKind,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    TimeWindow,
    describe_slice,
)
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.store.frames import record_from_json

if TYPE_CHECKING:
    from modelplane.observability.adapters.rollout_pages import RolloutPageSource
    from modelplane.observability.analysis_limits import AnalysisGate
    from modelplane.observability.evaluations import Evaluations
    from modelplane.observability.lineage import LineagePeers
    from modelplane.observability.monitors import Monitors
    from modelplane.observability.settings import ObservabilitySettings
    from modelplane.observability.store.base import EvaluationStore
    from modelplane.observability.store.encoding import Catalog


class ObservabilityRuntime(Protocol):
    """What the dashboard reads of the service's runtime (``runtime.ObservabilityRuntime``,
    which starts the dashboard: a protocol here, so neither module imports the other)."""

    settings: ObservabilitySettings
    store: EvaluationStore
    evaluations: Evaluations
    analyses: AnalysisGate
    monitors: Monitors
    lineage_peers: LineagePeers
    serving: RolloutPageSource

log = logging.getLogger("modelplane.observability.dashboard")
COOKIE = "modelplane_session"
#: how long a dashboard session lasts, and how many are kept (the oldest go first)
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


class DashboardSessions:
    """Session tokens -> (the key's SHA-256, expiry), as documents in the store (shared
    by every replica), bounded: expired ones and, past ``limit``, the oldest are
    purged every ``purge_every`` logins."""

    KIND = "dashboard_session"

    def __init__(self, store: EvaluationStore, ttl_seconds: float = SESSION_SECONDS,
                 limit: int = MAX_SESSIONS, clock: Callable[[], float] = time.time,
                 purge_every: int = 128) -> None:
        self.ttl_seconds = ttl_seconds
        self._store = store
        self._limit = limit
        self._clock = clock  # wall clock: expiries are compared across processes
        self._purge_every = max(1, purge_every)
        self._opened = 0
        self._lock = threading.Lock()

    @staticmethod
    def _id(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def open(self, key: str) -> str:
        token = secrets.token_urlsafe(32)
        self._store.put_document(self.KIND, self._id(token), "", {
            "id": self._id(token), "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "expires": self._clock() + self.ttl_seconds})
        with self._lock:
            self._opened += 1
            purge = self._opened % self._purge_every == 0
        if purge:
            self.purge()
        return token

    def purge(self) -> int:
        """Forget expired sessions, then the oldest past the limit; how many went."""
        docs = self._store.list_documents(self.KIND)  # oldest first
        now = self._clock()
        gone = [d for d in docs if float(d["expires"]) <= now]
        live = [d for d in docs if float(d["expires"]) > now]
        gone += live[:max(0, len(live) - self._limit)]
        for d in gone:
            self._store.delete_document(self.KIND, str(d["id"]))
        return len(gone)

    def key_digest(self, token: str) -> str | None:
        """The key hash behind a live session; None (and forgotten) when expired."""
        doc = self._store.get_document(self.KIND, self._id(token))
        if doc is None:
            return None
        if float(doc["expires"]) <= self._clock():
            self._store.delete_document(self.KIND, self._id(token))
            return None
        return str(doc["key_sha256"])


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
margin:0;background:#f5f6f8;color:#222}
header{background:#1f2a44;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline}
header a{color:#cfe0ff;text-decoration:none} h1{font-size:18px;margin:0}
main{padding:16px 24px} .grid{display:grid;grid-template-columns:repeat(2,minmax(560px,1fr));
gap:16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:12px 14px}
.meta{color:#555;font-size:13px;margin:4px 0 12px} .pill{display:inline-block;
padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.firing{background:#d64545}.resolved{background:#9aa3ad} table{border-collapse:collapse;
font-size:13px}
td,th{padding:4px 10px;text-align:left;border-bottom:1px solid #eee}
.note{color:#666;font-size:12px}
.running,.paused,.promoting{background:#3b6fd8}.promoted{background:#2f9e6e}
.rolled_back,.failed{background:#d64545}.aborted{background:#9aa3ad}
.selectors{margin:0 0 16px;font-size:13px;display:flex;flex-wrap:wrap;gap:6px 24px;
align-items:baseline} .selectors form,.search{margin:0} .search{margin-top:10px;font-size:13px}
.decision{font-size:14px;border-left:4px solid #1f2a44;padding:6px 12px;
margin:8px 0 14px;background:#fff}
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><header><h1>modelplane observability</h1>"
            f"<a href='/'>models</a></header><main>{body}</main></body></html>")


@dataclass
class PageAnalyses:
    """What the model page computes from the evaluations for one window: kept by
    :class:`ModelPageCache`."""

    performance_svg: str
    drift_svg: str
    slices_svg: str
    notes: list[str]
    #: performance was answered from the hourly profiles (the range is large)
    profiled: bool
    #: records with an actual in the window
    labeled: int
    metric: M.Metric
    #: the "why is it worse" panel, once computed (None: not yet)
    why: WhyView | None = None


@dataclass
class ModelView:
    model: str
    meta: str
    performance_svg: str
    drift_svg: str
    slices_svg: str
    alerts_svg: str
    alerts_rows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    page: PageRange = field(default_factory=PageRange)
    versions: list[str] = field(default_factory=list)
    window: TimeWindow = field(default_factory=TimeWindow)
    bucket: timedelta = timedelta(hours=1)
    live: EvaluationFilter | None = None
    reference: Reference | None = None
    reference_name: str = ""
    metric: M.Metric = M.Metric.ACCURACY
    #: the versions with records in the window, oldest first
    versions_in_window: list[str] = field(default_factory=list)
    #: the newest predictions in the window
    recent: list[EvaluationRecord] = field(default_factory=list)
    #: performance was answered from the hourly profiles (the range is large)
    profiled: bool = False
    #: the page's analyses, and the key they are cached under
    analyses: PageAnalyses | None = None
    cache_key: tuple[object, ...] = ()
    #: the records the analyses read, for the "why" panel's (this page's only)
    frames: SharedFrames = field(default_factory=dict, repr=False)


#: model pages' analyses kept per process (the least recently used go first)
PAGE_CACHE_ENTRIES = 64


class ModelPageCache:
    """The model page's analyses per window, in this process.

    The key holds what the analyses read: the model, window, bucket, versions,
    environment, the reference (a baseline's stored document, or the reference
    records' filter), and a marker of the data: the profiles' record counts of the
    window and of the reference, read from the store on every page load (a
    profile-count query: the hours' rows, not the records). A record stored by any
    replica changes its hour's count, so the next load on every replica misses
    and recomputes. An actual changes no profile count (it moves confusion counts),
    so entries also expire ``ttl_seconds`` after they were computed: a new actual
    shows within that time. ``ttl_seconds`` 0 keeps nothing."""

    def __init__(self, ttl_seconds: float, entries: int = PAGE_CACHE_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries = max(entries, 1)
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[object, ...], tuple[float, PageAnalyses]] = \
            OrderedDict()

    def get(self, key: tuple[object, ...]) -> PageAnalyses | None:
        with self._lock:
            hit = self._kept.get(key)
            if hit is None:
                return None
            if self._clock() - hit[0] >= self.ttl_seconds:
                del self._kept[key]
                return None
            self._kept.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[object, ...], analyses: PageAnalyses) -> None:
        if self.ttl_seconds <= 0 or not key:
            return
        with self._lock:
            old = self._kept.get(key)
            self._kept[key] = (old[0] if old else self._clock(), analyses)
            self._kept.move_to_end(key)
            while len(self._kept) > self._entries:
                self._kept.popitem(last=False)


_SHORT = {DriftMethod.WASSERSTEIN: "wasserstein/sd", DriftMethod.JENSEN_SHANNON: "JS",
          DriftMethod.KS: "1 - KS p", DriftMethod.CHI_SQUARE: "1 - chi2 p", DriftMethod.PSI: "PSI"}


def _color_for(metric: M.Metric, value: float, overall: float) -> str:
    worse = value < overall if metric in M.HIGHER_IS_BETTER else value > overall
    return RED if worse else GREEN


def _records_in(store: EvaluationStore, f: EvaluationFilter) -> int:
    """Records of ``f``'s model, versions, environment and window (whole hours) as the
    profiles count them, with those of hours stored before profiles were kept."""
    counted, missing = store.profile_count(ScanSpec(f.model, f.versions, f.environment,
                                                    f.window))
    return counted + missing


def _recent(store: EvaluationStore, live: EvaluationFilter) -> list[EvaluationRecord]:
    """The window's newest :data:`RECENT` records: looked for in its last hour, then
    its last day, then the whole window, so that a large window is not sorted whole."""
    end, start = live.window.end, live.window.start
    assert end is not None and start is not None  # window_for sets both
    for back in (timedelta(hours=1), timedelta(days=1), None):
        lo = start if back is None else max(start, end - back)
        data = store.scan(ScanSpec(live.model, live.versions, live.environment,
                                   TimeWindow(lo, end), limit=RECENT, newest_first=True))
        lines = [ln for ln in data.splitlines() if ln.strip()]
        if len(lines) >= RECENT or back is None or lo == start:
            return [record_from_json(json.loads(ln), live.model) for ln in lines]
    return []  # pragma: no cover - the loop's last turn returns


def _version_key(v: str) -> tuple[int, int | str]:
    return (0, int(v)) if v.isdigit() else (1, v)


def build_model_view(rt: ObservabilityRuntime, model: str,
                     params: Mapping[str, str] | None = None,
                     cache: ModelPageCache | None = None) -> ModelView:
    """The model page. Reads that do not grow with the records come first (the
    catalog, profile counts, the time span, the baseline document); the analyses
    (performance, drift, worst slices; the "why" panel is added by the caller)
    come from ``cache`` when it holds them for this window and data, else they are
    computed (from the hourly profiles when the range is past the exact limit);
    the alerts and the newest predictions are read on every load."""
    ev = rt.evaluations
    store = rt.store
    catalog = ev.catalog(model, "model")
    counts = {e: _records_in(store, EvaluationFilter(model, environment=e))
              for e in (Environment.TRAINING, Environment.VALIDATION, Environment.PRODUCTION)}
    total = _records_in(store, EvaluationFilter(model))
    first_all, last_all = store.record_span(ScanSpec(model))
    if not total or last_all is None:
        raise ModelplaneError(f"model {model!r} has no records")
    envs = {e for e, n in counts.items() if n}
    env = Environment.PRODUCTION if Environment.PRODUCTION in envs else Environment.UNSPECIFIED
    versions = sorted(catalog.versions(), key=_version_key)
    page = parse_range(params or {}, versions)
    latest = page.version or (versions[-1] if versions else "")
    first, last = store.record_span(ScanSpec(model, (page.version,) if page.version else (),
                                             env))
    window, bucket = window_for(page, first or first_all or last_all, last or last_all)
    live = EvaluationFilter(model, (page.version,) if page.version else (), env, window)
    # Reference: the version's baseline, else training, else validation records.
    reference: Reference | None = None
    ref_name = ""
    ref_key: object = None
    doc = store.get_document("baseline", f"{model}\x1f{latest}")
    if doc is not None:
        baseline = Baseline.from_dict(doc)
        ref_key = ("baseline", json.dumps(doc, sort_keys=True),
                   _records_in(store, baseline.reference_filter()))
        if ref_key[2]:
            reference = Reference(baseline=(model, latest))
            ref_name = f"validation baseline of {latest}"
    if reference is None:
        for candidate in (Environment.TRAINING, Environment.VALIDATION):
            if candidate in envs and candidate is not env:
                ref_filter = EvaluationFilter(model, environment=candidate)
                reference = Reference(filter=ref_filter)
                ref_name = f"{candidate.name.lower()} records"
                ref_key = (ref_key, candidate, counts[candidate])
                break
    # The versions with records in the window (the newest ten are looked at).
    present = [v for v in versions[-10:] if not page.version
               and _records_in(store, replace_window(EvaluationFilter(model, (v,), env),
                                                      window))]
    live_records = _records_in(store, live)
    key: tuple[object, ...] = (model, window.start, window.end, bucket, live.versions, env,
                               ref_key, live_records, tuple(present))
    analyses = cache.get(key) if cache is not None else None
    frames: SharedFrames = {}
    if analyses is None:
        with shared_frames(frames):  # the window and the reference read once
            analyses = _analyses(ev, catalog, live, live_records, bucket, reference,
                                 ref_name, doc)
        if cache is not None:
            cache.put(key, analyses)
    metric = analyses.metric
    alerts = rt.monitors.alerts(model)
    marks = [Mark(a.create_time, a.message, RED if a.state is AlertState.FIRING else GREY)
             for a in alerts]
    rows = [f"<tr><td><span class='pill {a.state.name.lower()}'>{a.state.name.lower()}</span>"
            f"</td><td>{a.create_time:%Y-%m-%d %H:%M}</td><td>{escape(a.message)}</td></tr>"
            for a in alerts[:10]]
    assert first_all is not None
    meta = (f"{total} records; {analyses.labeled} with actuals in the range shown; versions "
            f"{', '.join(versions)}; {first_all:%Y-%m-%d %H:%M} → "
            f"{last_all:%Y-%m-%d %H:%M} UTC")
    return ModelView(model, meta, analyses.performance_svg, analyses.drift_svg,
                     analyses.slices_svg, timeline(marks, title="Alerts"), rows,
                     list(analyses.notes), page=page, versions=versions, window=window,
                     bucket=bucket, live=live, reference=reference, reference_name=ref_name,
                     metric=metric, versions_in_window=present, recent=_recent(store, live),
                     profiled=analyses.profiled, analyses=analyses, cache_key=key,
                     frames=frames)


def _analyses(ev: Evaluations, catalog: Catalog, live: EvaluationFilter, live_records: int,
              bucket: timedelta,
              reference: Reference | None, ref_name: str, baseline: Mapping[str, object] | None,
              ) -> PageAnalyses:
    """Performance over time, drift per feature and the worst slices of ``live``."""
    notes: list[str] = []
    window = live.window
    features = catalog.features()
    categorical = [ColumnRef(ColumnSource.FEATURE, n) for n in sorted(features)
                   if features[n] is not ColumnKind.NUMERIC]
    categorical += [ColumnRef(ColumnSource.TAG, n) for n in catalog.tags()]
    numeric = [ColumnRef(ColumnSource.FEATURE, n) for n in sorted(features)
               if features[n] is ColumnKind.NUMERIC]
    # Over time and by slice in one call. Past MODELPLANE_OBSERVABILITY_EXACT_ROWS
    # records (the profiles' count, the evaluations' own rule) by categorical slices
    # only, so that the evaluations answer from the hourly profiles and confusion
    # counts; else the records are read once for numeric slices too (were the count
    # wrong, the answer would still be right: numeric slices make it exact).
    large = live_records > ev.exact_rows
    perf = ev.performance(live, bucket=bucket,
                          slice_by=categorical if large else [*categorical, *numeric])
    profiled = perf.mode is AnalysisMode.PROFILE
    slices = list(perf.slices)
    if profiled:  # profiles count categorical values only
        notes.append(f"this range holds more than {ev.exact_rows} records "
                     "(MODELPLANE_OBSERVABILITY_EXACT_ROWS): performance comes from the hourly "
                     "profiles; slices by numeric features and estimated performance need "
                     "the records themselves - narrow the range to see them")
    elif large and numeric:  # the profiles could not answer: the records, numeric too
        slices += ev.performance(live, slice_by=numeric).slices
    metric = M.Metric.ACCURACY if perf.task is M.TaskType.CLASSIFICATION else M.Metric.MAE
    realized = [(g.window.start, v) for g in perf.windows
                if g.window and g.window.start and (v := g.metrics.get(metric)) is not None]
    series = [Series(f"{metric.name.lower()} (with actuals)", realized, BLUE)]
    threshold = None
    if baseline is not None:
        threshold = Baseline.from_dict(dict(baseline)).metrics.get(metric)
    if reference is not None and catalog.score_keys() and perf.task is M.TaskType.CLASSIFICATION \
            and not profiled:  # estimation reads the records
        try:
            proxy = ev.proxy_performance(live, reference, bucket=bucket)
            est = [(g.window.start, v) for g in proxy.windows
                   if g.window and g.window.start and (v := g.estimated.get(metric)) is not None]
            series.append(Series(f"estimated {metric.name.lower()} (no actuals)", est, ORANGE,
                                 dashed=True))
        except ModelplaneError as exc:
            notes.append(f"estimated performance unavailable: {exc.message}")
    perf_svg = line_chart(series, title=f"Performance over time - {metric.name.lower()} per "
                          f"{describe_bucket(bucket)}", y_label=metric.name.lower(),
                          threshold=threshold, threshold_label="validation baseline")
    # Drift per feature: the range's last day of live records against the reference.
    assert window.start is not None and window.end is not None  # window_for sets both
    if reference is not None:
        last_day = replace_window(live, TimeWindow(
            max(window.start, window.end - timedelta(days=1)), window.end))
        drift = ev.drift(last_day, reference)
        bars = []
        for c in drift.columns:
            stat = c.drift.statistic(c.drift.decision_method)
            if stat is None:
                continue
            value = stat.value if stat.method not in (DriftMethod.KS, DriftMethod.CHI_SQUARE) \
                else 1 - (stat.p_value or 0)
            bars.append(Bar(str(c.column), value, RED if c.drift.drifted else GREEN,
                            f"({_SHORT[stat.method]})"))
        bars.sort(key=lambda b: -b.value)
        thr = rt_thresholds_hint(drift)
        recent_part = "last day" if window.end - window.start > timedelta(days=1) \
            else "the range"
        drift_svg = bar_chart(bars, title=f"Drift per feature - {recent_part} vs {ref_name}",
                              reference=thr, reference_label="threshold")
    else:
        drift_svg = bar_chart([], title="Drift per feature")
        notes.append("no reference for drift: set a baseline (SetBaseline) or log training "
                     "records")
    # Worst slices by the metric, against the overall value.
    overall = perf.overall.metrics.get(metric)
    worst = [g for g in slices if g.labeled_count >= 30 and g.metrics.get(metric) is not None]
    worst.sort(key=lambda g: float(g.metrics[metric] or 0.0) if metric not in M.HIGHER_IS_BETTER
               else -float(g.metrics[metric] or 0.0))  # never None: filtered above
    worst = worst[::-1][:10] if worst else []
    slice_bars = [Bar(describe_slice(list(g.slice or ())), float(g.metrics[metric] or 0),
                      _color_for(metric, float(g.metrics[metric] or 0), overall or 0.0),
                      f"n={g.labeled_count}") for g in worst]
    lowest = min([b.value for b in slice_bars] + [overall or 0.0])
    slices_svg = bar_chart(slice_bars, title=f"Worst slices - {metric.name.lower()}",
                           reference=overall, reference_label="overall",
                           axis_min=lowest * 0.9 if metric in M.HIGHER_IS_BETTER else None)
    return PageAnalyses(perf_svg, drift_svg, slices_svg, notes, profiled,
                        perf.overall.labeled_count, metric)


def _sharing(part: Callable[..., None], frames: SharedFrames) -> Callable[..., None]:
    """``part`` run with the frames the page's analyses read (in the analyses' thread)."""
    def run(*args: object) -> None:
        with shared_frames(frames):
            part(*args)
    return run


def replace_window(f: EvaluationFilter, window: TimeWindow) -> EvaluationFilter:
    from dataclasses import replace
    return replace(f, window=window)


def rt_thresholds_hint(drift: object) -> float:
    return 0.1  # normalized Wasserstein and Jensen-Shannon share the 0.1 default


RECENT = 10


def _link(model: str, query: str, label: str, current: bool) -> str:
    if current:
        return f"<b>{escape(label)}</b>"
    return f"<a href='/models/{quote(model)}{escape(query)}'>{escape(label)}</a>"


def render_selectors(view: ModelView) -> str:
    """Time-range and version links, and a from/to form (plain GET, no script)."""
    p, m = view.page, view.model
    whole = p.days is None and p.start is None and p.end is None
    ranges = [_link(m, p.query(days=None, from_=None, to=None), "all", whole)]
    ranges += [_link(m, p.query(days=d, from_=None, to=None), label,
                     p.days is not None and f"{p.days:g}" == d) for label, d in QUICK_RANGES]
    vers = [_link(m, p.query(version=None), "all versions", not p.version)]
    vers += [_link(m, p.query(version=v), v, p.version == v) for v in view.versions[-12:]]

    def value(t: datetime | None) -> str:
        return f"{t:%Y-%m-%dT%H:%M}" if t else ""

    hidden = (f"<input type='hidden' name='version' value='{escape(p.version)}'>"
              if p.version else "")
    w = view.window
    shown = (f"{w.start:%Y-%m-%d %H:%M} → {w.end:%Y-%m-%d %H:%M} UTC, one point per "
             f"{describe_bucket(view.bucket)}") if w.start and w.end else ""
    return (f"<div class='card selectors' id='selectors'>"
            f"<div>Time range: {' · '.join(ranges)}</div>"
            f"<form method='get' action='/models/{quote(m)}'>from <input type='datetime-local' "
            f"name='from' value='{value(p.start)}'> to <input type='datetime-local' name='to' "
            f"value='{value(p.end)}'> UTC {hidden}<button type='submit'>show</button></form>"
            f"<div>Version: {' · '.join(vers)}</div>"
            f"<div class='note'>Showing {escape(shown)}.</div></div>")


def render_recent(view: ModelView) -> str:
    rows = "".join(
        f"<tr><td><a href='/predictions/{quote(r.prediction_id, safe='')}'>"
        f"{escape(r.prediction_id)}</a></td><td>{escape(r.version)}</td>"
        f"<td>{r.prediction_time:%Y-%m-%d %H:%M:%S}</td><td>{escape(str(r.prediction))}</td>"
        f"<td>{escape(str(r.actual.value)) if r.actual else '—'}</td></tr>"
        for r in view.recent if r.prediction_time)
    table = ("<table><tr><th>prediction id</th><th>version</th><th>time (UTC)</th>"
             f"<th>prediction</th><th>actual</th></tr>{rows}</table>") if rows else \
        "<p class='note'>no predictions in this range</p>"
    return (f"<section class='card' id='recent' style='margin-top:16px'><h3 style='margin:0 0 "
            f"6px;font-size:15px'>Recent predictions</h3>{table}"
            f"{_SEARCH}</section>")


_SEARCH = ("<form method='get' action='/predictions' class='search'>Prediction id: "
           "<input type='search' name='id' size='40' required> <button type='submit'>open "
           "its lineage</button></form>")


def render_model(view: ModelView, rollouts_html: str = "", why_html: str = "") -> str:
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in view.notes)
    table = ("<table><tr><th>state</th><th>raised</th><th>alert</th></tr>"
             + "".join(view.alerts_rows) + "</table>") if view.alerts_rows else ""
    return _page(view.model, f"""
<h2>{escape(view.model)}</h2><div class='meta'>{escape(view.meta)}</div>{notes}{rollouts_html}
{render_selectors(view)}{why_html}
<div class='grid'>
<section class='card' id='performance'>{view.performance_svg}</section>
<section class='card' id='drift'>{view.drift_svg}</section>
<section class='card' id='slices'>{view.slices_svg}</section>
<section class='card' id='alerts'>{view.alerts_svg}{table}</section>
</div>{render_recent(view)}""")


# --- rollouts (issue #17) ---------------------------------------------------------

def wilson(labeled: int, value: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``value`` of ``labeled`` (95 %)."""
    if labeled <= 0:
        return 0.0, 1.0
    n, p = float(labeled), value
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _weights(events: list[RolloutEventView], until: datetime) -> list[tuple[datetime, float]]:
    """The challenger's weight as a step line: flat between events."""
    points: list[tuple[datetime, float]] = []
    for e in sorted(events, key=lambda e: e.time):
        if points and e.weight != points[-1][1]:
            points.append((e.time, points[-1][1]))
        if not points or e.weight != points[-1][1]:
            points.append((e.time, e.weight))
    if points and until > points[-1][0]:
        points.append((until, points[-1][1]))
    return points


async def rollouts_links(rt: ObservabilityRuntime, model: str) -> str:
    """The model page's list of its rollouts, or why there is none."""
    try:
        rollouts = await rt.serving.rollouts_of(model)
    except ServingUnavailable as exc:
        return f"<p class='note'>Rollouts: {escape(str(exc))}.</p>"
    if not rollouts:
        return ""
    links = ", ".join(
        f"<a href='/rollouts/{quote(r.name)}'>{escape(r.name)}</a> "
        f"<span class='pill {r.state.lower()}'>{escape(r.state.lower().replace('_', ' '))}"
        f"</span>" for r in rollouts[:10])
    return f"<div class='meta' id='rollouts'>Rollouts: {links}</div>"


def render_rollout(r: RolloutSummary, events: list[RolloutEventView], now: datetime) -> str:
    active = r.state in ("RUNNING", "PAUSED", "PROMOTING")
    until = now if active else (max((e.time for e in events), default=now))
    weight_svg = line_chart([Series("challenger weight %", _weights(events, until), ORANGE)],
                            title=f"Challenger v{r.challenger_version}: share of traffic",
                            y_label="% of requests", y_min=0.0)
    rows: list[tuple[str, list[Interval]]] = []
    table = []
    for c in r.checks:
        sides = []
        for side, counts, color in (("champion", c.champion, GREY),
                                    ("challenger", c.challenger, ORANGE)):
            # a share gets its Wilson interval; a MAE's spread is not in serving's
            # evidence, so it is drawn as a point
            lo, hi = (wilson(counts.labeled, counts.value) if r.share_metric
                      else (counts.value, counts.value))
            sides.append(Interval(side, counts.value, lo, hi, color, f"n={counts.labeled}"))
        rows.append((c.name, sides))
        # serving's difference: > 0 = challenger better, whichever way the metric points
        diff = c.difference
        verdict = ("worse than the margin" if c.likelihood_ratio >= c.threshold
                   and diff < -c.margin else "non-inferior" if c.likelihood_ratio >= c.threshold
                   and diff > -c.margin else "not decided")
        table.append(f"<tr><td>{escape(c.name)}</td><td>{c.champion.value:.4f} "
                     f"(n={c.champion.labeled})</td><td>{c.challenger.value:.4f} "
                     f"(n={c.challenger.labeled})</td><td>{diff:+.4f}</td><td>{c.margin:g}</td>"
                     f"<td>{c.likelihood_ratio:.3g} / {c.threshold:.3g}</td>"
                     f"<td>{verdict}</td></tr>")
    metric = r.metric[:1].upper() + r.metric[1:]
    checks_svg = interval_chart(
        rows, title=f"{metric} per check: champion vs challenger (95 % Wilson intervals)"
        if r.share_metric else f"{metric} per check (lower is better): champion vs "
        "challenger", upper=1.0 if r.share_metric else None)
    checks_table = ("<table><tr><th>check</th><th>champion</th><th>challenger</th>"
                    "<th>difference (&gt; 0: challenger better)</th><th>margin</th>"
                    "<th>likelihood ratio / threshold</th>"
                    "<th>test</th></tr>" + "".join(table) + "</table>") if table else ""
    signals_table = ("<table id='signals'><tr><th>check</th><th>signal</th><th>champion</th>"
                     "<th>challenger</th><th>limit</th></tr>" + "".join(
                         f"<tr><td>{escape(g.check)}</td><td>{escape(g.signal)}</td>"
                         f"<td>{escape(g.champion)}</td><td>{escape(g.challenger)}</td>"
                         f"<td>{escape(g.limit)}</td></tr>" for g in r.signals)
                     + "</table><p class='note'>Proxy and operations checks only roll back or "
                     "hold; promotion needs the quality check on actuals.</p>"
                     ) if r.signals else ""
    event_rows = "".join(
        f"<tr><td>{e.time:%Y-%m-%d %H:%M:%S}</td><td>{escape(e.type.lower())}</td>"
        f"<td>{e.weight:g}%</td><td>{escape(e.message)}</td><td>{escape(e.actor)}</td></tr>"
        for e in sorted(events, key=lambda e: e.time, reverse=True)[:50])
    steps = " → ".join(f"<b>{w:g}%</b>" if i == r.current_step and active else f"{w:g}%"
                       for i, w in enumerate(r.weights))
    meta = (f"deployment {escape(r.deployment)} · model <a href='/models/{quote(r.model)}'>"
            f"{escape(r.model)}</a> · challenger v{escape(r.challenger_version)} against "
            f"@{escape(r.champion_alias)} (v{escape(r.champion_version)}) · steps {steps} · "
            f"alpha {r.alpha:g}")
    return _page(f"rollout {r.name}", f"""
<h2>Rollout {escape(r.name)} <span class='pill {r.state.lower()}'>
{escape(r.state.lower().replace('_', ' '))}</span></h2><div class='meta'>{meta}</div>
<div class='decision' id='decision'>{escape(r.state_message or "no decision yet")}</div>
<div class='grid'>
<section class='card' id='weights'>{weight_svg}</section>
<section class='card' id='checks'>{checks_svg}{checks_table}
<p class='note'>The decision is the sequential test's (likelihood ratio against 1/alpha;
per slice value k/alpha), not these intervals: they show each side's uncertainty.</p>
{signals_table}</section>
</div>
<section class='card' id='events' style='margin-top:16px'><table><tr><th>time (UTC)</th>
<th>event</th><th>weight</th><th>message</th><th>by</th></tr>{event_rows}</table></section>""")


def dashboard_app(rt: ObservabilityRuntime) -> Starlette:
    settings = rt.settings.service
    keys = ApiKeyStore(settings.api_keys_file) if settings.auth_enabled else None
    sessions = DashboardSessions(rt.store)
    cache = ModelPageCache(rt.settings.dashboard_cache_seconds)

    def authorized(request: Request) -> tuple[bool, str | None]:
        """(may see the page, a new session token to set when this is a ?key= login)."""
        if keys is None:
            return True, None
        query_key = request.query_params.get("key")
        if query_key and keys.lookup(query_key) is not None:
            return True, sessions.open(query_key)
        token = request.cookies.get(COOKIE)
        digest = sessions.key_digest(token) if token else None
        if digest is not None and keys.lookup_digest(digest) is not None:
            return True, None
        bearer = bearer_token({"authorization": request.headers.get("authorization", "")})
        if bearer and keys.lookup(bearer) is not None:
            return True, None
        return False, None

    async def guard(request: Request, render: object) -> Response:
        ok, new_session = await asyncio.to_thread(authorized, request)  # store reads
        if not ok:
            return HTMLResponse(_page("API key required", (
                "<h2>API key required</h2><p>Open this page with <code>?key=YOUR_API_KEY</code> "
                "once (it is then kept in a cookie), or send <code>Authorization: Bearer "
                "KEY</code>.</p>")), status_code=401)
        if new_session is not None:  # keep the key out of the address bar and history
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "key"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            resp: Response = RedirectResponse(target, status_code=303)
            resp.set_cookie(COOKIE, new_session, max_age=int(sessions.ttl_seconds),
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
            return resp
        try:
            html = await render()  # type: ignore[operator]
        except ModelplaneError as exc:
            busy = exc.code == "RESOURCE_EXHAUSTED"  # too many analyses, or too many rows
            if exc.code == "INVALID_ARGUMENT":  # a bad query parameter
                return HTMLResponse(_page("bad request", f"<h2>Bad request</h2><p>"
                                          f"{escape(exc.message)}</p><p><a href='"
                                          f"{escape(request.url.path)}'>Open this page without "
                                          f"parameters</a></p>"), status_code=400)
            retry = exc.metadata.get("retry_after_seconds")
            return HTMLResponse(_page("not available", f"<h2>Not available</h2><p>"
                                      f"{escape(exc.message)}</p>"),
                                status_code=429 if busy else 404,
                                headers={"retry-after": retry} if retry else None)
        if isinstance(html, Response):
            return html
        return HTMLResponse(html)

    async def index(request: Request) -> Response:
        async def render() -> str:
            summaries = await asyncio.to_thread(rt.store.summaries)
            rows = "".join(
                f"<tr><td><a href='/models/{quote(s.model)}'>{escape(s.model)}</a></td>"
                f"<td>{s.record_count}</td><td>{s.actual_count}</td>"
                f"<td>{escape(', '.join(s.versions))}</td>"
                f"<td>{s.last_time:%Y-%m-%d %H:%M}</td></tr>" for s in summaries)
            return _page("models", "<h2>Models</h2><div class='card'><table><tr><th>model</th>"
                         "<th>records</th><th>with actuals</th><th>versions</th>"
                         f"<th>last prediction (UTC)</th></tr>{rows}</table></div>")
        return await guard(request, render)

    async def model_page(request: Request) -> Response:
        model = request.path_params["model"]

        params = dict(request.query_params)

        async def render() -> str:
            view = await rt.analyses.run(build_model_view, rt, model, params, cache)
            why_html = ""
            if view.live is not None and view.analyses is not None:
                why = view.analyses.why
                if why is None:
                    # each its own analysis (slot and row budget): over budget, it says so
                    why = WhyView(view.metric, view.reference_name, profiled=view.profiled)
                    refused = False
                    for part in (why_root_cause, why_compare):
                        try:
                            await rt.analyses.run(_sharing(part, view.frames), rt.evaluations,
                                                  view.live, view.reference,
                                                  view.versions_in_window, why)
                        except ModelplaneError as exc:  # too many analyses at once
                            why.notes.append(exc.message)
                            refused = True
                    if not refused:  # a refusal is for now: the next load tries again
                        view.analyses.why = why
                        cache.put(view.cache_key, view.analyses)
                why_html = render_why(why)
            return render_model(view, await rollouts_links(rt, model), why_html)
        return await guard(request, render)

    async def prediction_search(request: Request) -> Response:
        async def render() -> str | Response:
            pid = request.query_params.get("id", "").strip()
            if not pid:
                raise InvalidArgument("id: required (a prediction id)",
                                      reason="BAD_DASHBOARD_PARAMETER")
            return RedirectResponse(f"/predictions/{quote(pid, safe='')}", status_code=303)
        return await guard(request, render)

    async def prediction_page(request: Request) -> Response:
        pid = request.path_params["pid"]

        async def render() -> str:
            rec = await asyncio.to_thread(load_record, rt.store, pid)
            if rec is None:
                raise NotFound(f"prediction {pid!r} is not in the evaluation store",
                               reason="RECORD_NOT_FOUND")
            lineage = await prediction_lineage(rec, rt.lineage_peers)
            return _page(f"prediction {pid}", render_lineage(lineage) + _SEARCH)
        return await guard(request, render)

    async def rollout_page(request: Request) -> Response:
        name = request.path_params["name"]

        async def render() -> str:
            try:
                rollout, events = await rt.serving.rollout(name)
            except ServingUnavailable as exc:
                return _page(f"rollout {name}", f"<h2>Rollout {escape(name)}</h2>"
                             f"<div class='card'><p>{escape(str(exc))}.</p></div>")
            return render_rollout(rollout, events, datetime.now(UTC))
        return await guard(request, render)

    async def health(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return Starlette(routes=[Route("/", index), Route("/models/{model:path}", model_page),
                             Route("/rollouts/{name}", rollout_page),
                             Route("/predictions", prediction_search),
                             Route("/predictions/{pid:path}", prediction_page),
                             Route("/healthz", health)])


__all__ = ["BLUE", "build_model_view", "dashboard_app", "datetime", "timezone"]
