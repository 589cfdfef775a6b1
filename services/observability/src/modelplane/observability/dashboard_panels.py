"""The model page's "why is it worse" panel and the prediction lineage page
(issue #17 item 5): HTML bodies, drawn with :mod:`charts` (no script)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from modelplane.kit.errors import ModelplaneError
from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode
from modelplane.observability.charts import (
    GREEN,
    GREY,
    ORANGE,
    RED,
    Bar,
    Interval,
    bar_chart,
    interval_chart,
)
from modelplane.observability.evaluations import Reference, RootCauseReport, SliceContribution
from modelplane.observability.records import ColumnKind, ColumnRef, ColumnSource, EvaluationFilter

if TYPE_CHECKING:
    from modelplane.observability.compare import VersionComparison
    from modelplane.observability.evaluations import Evaluations
    from modelplane.observability.lineage import PredictionLineage

#: slices shown in the panel
TOP_SLICES = 5
#: the comparison's bootstrap resamples (accuracy needs none: Wilson intervals)
COMPARE_RESAMPLES = 200


@dataclass
class WhyView:
    metric: M.Metric
    reference_name: str
    root_cause: RootCauseReport | None = None
    comparison: VersionComparison | None = None
    champion: str = ""
    challenger: str = ""
    notes: list[str] = field(default_factory=list)
    #: the page's range is past the exact limit: explain by what the profiles count
    profiled: bool = False


def why_root_cause(ev: Evaluations, live: EvaluationFilter, reference: Reference | None,
                   versions_in_window: list[str], out: WhyView) -> None:
    """Root cause of the window against the reference (automatic mode: from the
    profiles past the exact limit), into ``out``. Run under the analysis gate."""
    if reference is None:
        out.notes.append("no reference to explain against: set a baseline (SetBaseline) "
                         "or log validation or training records")
        return
    columns: list[ColumnRef] = []
    depth = 2
    if out.profiled:  # profiles count single categorical slices
        kinds = ev.catalog(live.model).columns()
        columns = [c for c, k in sorted(kinds.items()) if k is not ColumnKind.NUMERIC
                   and c.source in (ColumnSource.FEATURE, ColumnSource.TAG)]
        depth = 1
        out.notes.append("a range this large is explained from the hourly profiles: by "
                         "single categorical slices (numeric features and pairs of slices "
                         "need the records - narrow the range)")
    try:
        out.root_cause = ev.root_cause(live, reference, out.metric, columns=columns,
                                       max_slices=TOP_SLICES, max_depth=depth,
                                       mode=AnalysisMode.UNSPECIFIED)
    except ModelplaneError as exc:
        out.notes.append(f"root cause unavailable: {exc.message}")


def why_compare(ev: Evaluations, live: EvaluationFilter, reference: Reference | None,
                versions_in_window: list[str], out: WhyView) -> None:
    """When two versions have records in the window, the newest against the one
    before (CompareVersions' analysis, from the records), into ``out``. Run under
    the analysis gate, apart from the root cause: its own row budget."""
    if len(versions_in_window) < 2:
        return
    from modelplane.observability.compare import compare_versions

    out.champion, out.challenger = versions_in_window[-2], versions_in_window[-1]
    try:
        out.comparison = compare_versions(
            ev, replace(live, versions=()), out.champion, out.challenger, [out.metric],
            resamples=COMPARE_RESAMPLES, root_cause_metric=out.metric, max_slices=3)
    except ModelplaneError as exc:
        out.notes.append(f"version comparison (v{out.challenger} against v{out.champion}) "
                         f"unavailable: {exc.message}")


def _lower_is_worse(metric: M.Metric) -> bool:
    return metric in M.HIGHER_IS_BETTER


def _slice_rows(slices: list[SliceContribution]) -> str:
    return "".join(
        f"<tr><td>{escape(s.display_name)}</td><td>{s.contribution_share:.0%}</td>"
        f"<td>{s.lift:.2f}×</td><td>{s.reference_value:.3f} (n={s.reference_count})</td>"
        f"<td>{s.current_value:.3f} (n={s.current_count})</td></tr>" for s in slices)


def render_why(w: WhyView) -> str:
    name = w.metric.name.lower()
    parts: list[str] = []
    rc = w.root_cause
    if rc is not None:
        diff = rc.current_value - rc.reference_value
        worse = diff < 0 if _lower_is_worse(w.metric) else diff > 0
        verdict = "worse" if worse else "not worse"
        mode = " (from the hourly profiles)" if rc.mode is AnalysisMode.PROFILE else ""
        parts.append(
            f"<p class='decision' id='why-headline'>{escape(name)} <b>{rc.current_value:.3f}"
            f"</b> in this range against <b>{rc.reference_value:.3f}</b> in the "
            f"{escape(w.reference_name)}: {diff:+.3f}, {verdict}{mode}. The slices below "
            f"explain most of the change.</p>")
        top = [s for s in rc.slices if s.contribution > 0][:TOP_SLICES]
        bars = [Bar(s.display_name, s.contribution_share * 100, RED if worse else GREY,
                    f"% · lift {s.lift:.1f}×") for s in top]
        parts.append(bar_chart(bars, title=f"Slices that explain the change - share of the "
                               f"{name} change (%)", value_format="{:.0f}"))
        if top:
            parts.append("<table><tr><th>slice</th><th>share of the change</th><th>lift</th>"
                         f"<th>{escape(name)} in reference</th><th>{escape(name)} now</th></tr>"
                         + _slice_rows(top) + "</table><p class='note'>lift: the slice's "
                         "share of the change over its share of the records.</p>")
    c = w.comparison
    if c is not None:
        mc = next((m for m in c.metrics if m.metric is w.metric), None)
        if mc is not None and mc.champion.defined and mc.challenger.defined:
            sides = [Interval(f"v{w.champion}", mc.champion.value or 0.0, mc.champion.lower,
                              mc.champion.upper, GREY, f"n={c.champion_labeled}"),
                     Interval(f"v{w.challenger}", mc.challenger.value or 0.0,
                              mc.challenger.lower, mc.challenger.upper,
                              GREEN if mc.challenger_better else ORANGE,
                              f"n={c.challenger_labeled}")]
            parts.append(interval_chart([(name, sides)], title=f"v{w.challenger} against "
                                        f"v{w.champion} in this range "
                                        f"({c.confidence_level:.0%} intervals)"))
            d = mc.difference
            how = ("better" if mc.challenger_better else "worse") if mc.significant \
                else "no clear difference"
            between = (f"{d.value:+.4f} [{d.lower:+.4f}, {d.upper:+.4f}]" if d.defined
                       else "undefined")
            parts.append(f"<p id='compare-verdict' style='font-size:14px'>"
                         f"v{escape(w.challenger)} minus "
                         f"v{escape(w.champion)}: {escape(name)} {between} → <b>{how}</b>; "
                         f"{c.drifted_share:.0%} of the columns drifted between them.</p>")
            top = [s for s in c.root_cause.slices if s.contribution > 0][:3]
            if top:
                parts.append("<table><tr><th>slice (challenger vs champion)</th><th>share "
                             f"of the change</th><th>lift</th><th>v{escape(w.champion)}</th>"
                             f"<th>v{escape(w.challenger)}</th></tr>" + _slice_rows(top)
                             + "</table>")
    parts += [f"<p class='note'>{escape(n)}</p>" for n in w.notes]
    return ("<section class='card' id='why' style='margin-bottom:16px'><h3 style='margin:0 0 "
            "6px;font-size:15px'>Why is it worse?</h3>" + "".join(parts) + "</section>")


# --- the lineage page -------------------------------------------------------------

def _rows(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                   for k, v in pairs if v not in (None, "", [], {}))


def _time(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if t else ""


def render_lineage(lin: PredictionLineage) -> str:
    """The body of ``/predictions/<id>``: GetPredictionLineage's answer."""
    r = lin.record
    record = _rows([
        ("prediction id", r.prediction_id), ("model", r.model), ("version", r.version),
        ("environment", r.environment.name.lower()), ("time", _time(r.prediction_time)),
        ("prediction", r.prediction),
        ("scores", ", ".join(f"{k}={v:.4g}" for k, v in r.scores.items())),
        ("actual", r.actual.value if r.actual else "not yet"),
        ("trace id", r.trace_id), ("latency", f"{r.latency_us} µs" if r.latency_us else ""),
        ("deployment", lin.deployment), ("route", lin.route),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(r.tags.items())))])
    features = _rows([(k, v) for k, v in sorted(r.features.items())])
    v = lin.version
    version = _rows([
        ("run", v.run_id), ("experiment", v.experiment_id), ("dataset id", v.dataset_id),
        ("feature references", ", ".join(v.feature_refs)), ("code version", v.code_version),
        ("source", v.source), ("aliases", ", ".join(v.aliases))]) if v else ""
    ds = lin.dataset
    dataset = _rows([("id", ds.id), ("name", ds.name), ("version", ds.version or ""),
                     ("content hash", ds.content_hash), ("rows", ds.row_count or ""),
                     ("storage", ds.storage_uri)]) if ds else ""
    val, rep = lin.validation, lin.report
    validation = _rows([
        ("report", val.report_id if val else ""), ("status", val.status if val else ""),
        ("summary", (rep.summary if rep else "") or (val.summary if val else "")),
        ("report status", rep.status if rep else ""),
        ("dataset", rep.dataset if rep else ""),
        ("dataset sha256", rep.dataset_sha256 if rep else ""),
        ("rows", rep.row_count if rep and rep.row_count else ""),
        ("baseline version", rep.baseline_version if rep else ""),
        ("created", _time(rep.create_time) if rep else "")])
    ro = lin.rollout
    rollout = _rows([
        ("rollout", ro.rollout), ("deployment", ro.deployment), ("role", ro.role),
        ("step", ro.step), ("weight", f"{ro.weight:g}%"), ("state", ro.state.lower()),
        ("at event", f"#{ro.event_sequence} {_time(ro.event_time)}"),
        ("matched by", ro.matched_by)]) if ro else ""
    rollout_link = (f" <a href='/rollouts/{quote(ro.rollout)}'>open the rollout</a>"
                    if ro else "")
    missing = "".join(f"<tr><td>{escape(m.part)}</td><td>{escape(m.service)}</td>"
                      f"<td>{escape(m.reason)}</td></tr>" for m in lin.missing)

    def card(cid: str, title: str, table: str, empty: str, extra: str = "") -> str:
        inner = f"<table>{table}</table>" if table else f"<p class='note'>{escape(empty)}</p>"
        return (f"<section class='card' id='{cid}'><h3 style='margin:0 0 6px;font-size:15px'>"
                f"{title}</h3>{inner}{extra}</section>")

    body = [
        f"<h2>Prediction {escape(r.prediction_id)}</h2><div class='meta'>model "
        f"<a href='/models/{quote(r.model)}'>{escape(r.model)}</a> version "
        f"<a href='/models/{quote(r.model)}?version={quote(r.version)}'>{escape(r.version)}"
        f"</a></div><div class='grid'>",
        card("record", "Record", record, ""),
        card("features", "Features", features, "no features"),
        card("version", "Model version (registry)", version, "not known: see below"),
        card("dataset", "Training dataset (featurestore)", dataset, "not known: see below"),
        card("validation", "Validation (registry, report from the validator)", validation,
             "not known: see below",
             "<p class='note'>The registry's record of the version's validation; the "
             "validator's full report is missing: see below.</p>" if val and not rep else ""),
        card("rollout", "Rollout step (serving)", rollout,
             lin.rollout_note or "not known", (f"<p class='note'>{escape(lin.rollout_note)}"
                                               f"{rollout_link}</p>") if ro else ""),
        "</div>",
        (f"<section class='card' id='missing' style='margin-top:16px'><h3 style='margin:0 0 "
         f"6px;font-size:15px'>Missing</h3><table><tr><th>part</th><th>service</th>"
         f"<th>why</th></tr>{missing}</table></section>") if missing else
        "<p class='note' id='missing'>Nothing missing: every peer answered.</p>"]
    return "".join(body)


__all__ = ["WhyView", "render_lineage", "render_why", "why_compare", "why_root_cause"]
