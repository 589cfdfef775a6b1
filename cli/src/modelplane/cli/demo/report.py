"""What the demo prints: the validation report, performance, drift and root-cause tables,
the versions' live results and the URLs to look at. Each function takes what the platform
answered and renders it; nothing here calls a service."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from modelplane.cli.demo.session import DEPLOYMENT, MODEL, Demo

_STATUS_COLORS = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "ERROR": "red",
                  "SKIPPED": "dim"}


def metric(group: Any, which: int) -> float | None:
    """One metric of an observability ``MetricGroup``, None when it has no value."""
    for m in group.metrics:
        if m.metric == which and m.has_value:
            return float(m.value)
    return None


def _score(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def print_validation(demo: Demo, report: Any, final: Any, version: int,
                     holdout_id: str) -> str:
    """The report as a table (each check's worst threshold), then where it went; returns
    the report's status name (``PASS``, ``WARN`` ...)."""
    from rich.table import Table

    from modelplane.validator.v1 import validator_pb2 as vd

    table = Table(title=f"Validation report {report.id} - {MODEL} v{version} on {holdout_id}"
                        + (f" vs v{report.baseline_version}" if report.baseline_version else ""))
    for col in ("check", "status", "measured", "limit", "message"):
        table.add_column(col)
    for check in report.checks:
        status = vd.CheckStatus.Name(check.status).removeprefix("CHECK_STATUS_")
        worst = sorted(check.thresholds, key=lambda t: -t.status)[:1]
        measured = (f"{worst[0].name}={worst[0].measured:.3f}"
                    + (f" ({worst[0].subject})" if worst[0].subject else "")) if worst else ""
        limit = f"{worst[0].limit:g}" if worst else ""
        table.add_row(check.check, f"[{_STATUS_COLORS.get(status, 'white')}]{status}[/]",
                      measured, limit, check.message[:80])
    demo.console.print(table)
    status = vd.CheckStatus.Name(report.status).removeprefix("CHECK_STATUS_")
    demo.console.print(f"report status [bold]{status}[/]: {report.summary}; attached to the "
                       f"registry: {final.registry_attached}; observability baseline set: "
                       f"{final.observability_baseline_set}")
    for note in final.notes:
        demo.console.print(f"  note: {note}")
    skipped = [c for c in report.checks if c.status == vd.CHECK_STATUS_SKIPPED]
    demo.console.print(f"{len(report.checks) - len(skipped)} of {len(report.checks)} checks ran"
                       + ("; skipped: " + "; ".join(f"{c.check} ({c.message})" for c in skipped)
                          if skipped else ""))
    return status


def print_performance(demo: Demo, perf: Any) -> None:
    from rich.table import Table

    from modelplane.observability.v1 import observability_pb2 as ob

    table = Table(title="Accuracy by city, with the delayed actuals")
    for col in ("slice", "predictions", "with actuals", "accuracy", "F1"):
        table.add_column(col)
    for g in [perf.overall, *perf.slices]:
        table.add_row(g.slice.display_name or "all", str(g.record_count), str(g.labeled_count),
                      _score(metric(g, ob.METRIC_ACCURACY)), _score(metric(g, ob.METRIC_F1)))
    demo.console.print(table)


def column_name(column: Any) -> str:
    """A drift column's name; the prediction and actual columns by their source."""
    from modelplane.observability.v1 import observability_pb2 as ob

    source = ob.ColumnSource.Name(column.source).removeprefix("COLUMN_SOURCE_")
    return str(column.name or source.lower())


def print_drift(demo: Demo, drift: Any) -> None:
    from rich.table import Table

    from modelplane.observability.v1 import observability_pb2 as ob

    table = Table(title="Drift: second half of the traffic vs the first half")
    for col in ("column", "statistic", "value", "p-value", "drifted"):
        table.add_column(col)
    for c in sorted(drift.columns, key=lambda c: not c.drifted):
        stat = next((s for s in c.statistics if s.method == c.decision_method), None)
        table.add_row(column_name(c.column),
                      ob.DriftMethod.Name(c.decision_method).removeprefix("DRIFT_METHOD_"),
                      f"{stat.value:.3f}" if stat else "-", f"{stat.p_value:.2g}" if stat else "-",
                      "[red]yes[/]" if c.drifted else "no")
    demo.console.print(table)


def print_root_causes(demo: Demo, drift_cause: Any, metric_cause: Any, shifted_city: str,
                      named: bool) -> None:
    from rich.table import Table

    accuracy_title = (f"Root cause of the accuracy drop: {metric_cause.reference_value:.3f} "
                      f"-> {metric_cause.current_value:.3f}")
    for title, res in (("Root cause of the drift of amount", drift_cause),
                       (accuracy_title, metric_cause)):
        table = Table(title=title, caption="ranked by where the change is concentrated "
                      "(score), not by contribution")
        for col in ("slice", "contribution", "share", "lift", "before", "after"):
            table.add_column(col)
        for s in res.slices[:5]:
            table.add_row(s.slice.display_name, f"{s.contribution:.3f}",
                          f"{s.contribution_share:.0%}", f"{s.lift:.1f}x",
                          f"{s.reference_value:.3f}", f"{s.current_value:.3f}")
        demo.console.print(table)
    top_drift = drift_cause.slices[0].slice.display_name if drift_cause.slices else ""
    top_metric = metric_cause.slices[0].slice.display_name if metric_cause.slices else ""
    demo.console.print(
        f"[bold]{'found' if named else 'did not find'}[/] the shifted city: drift points at "
        f"[bold]{top_drift or '-'}[/], the accuracy drop at [bold]{top_metric or '-'}[/]"
        f" (the demo shifted {shifted_city})")


def print_canary(demo: Demo, by_version: dict[str, dict[str, Any]]) -> None:
    """Each version on the live predictions that have actuals (the whole run, all cities;
    the rollouts decided on their own windows)."""
    from rich.table import Table

    table = Table(title="Live predictions with actuals, by version (the whole run)")
    for col in ("model", "version", "predictions", "accuracy", "F1"):
        table.add_column(col)
    for alias in by_version:
        v = by_version[alias]
        table.add_row(alias, v["version"], str(v["labeled"]), _score(v["accuracy"]),
                      _score(v["f1"]))
    demo.console.print(table)


def print_urls(demo: Demo) -> dict[str, str]:
    p = demo.platform
    urls = {"gateway": p.gateway_url, "openapi": f"{p.gateway_url}/openapi.json",
            "mlflow": p.mlflow_uri, "dashboard": f"{p.dashboard_url}models/{quote(MODEL)}",
            "oip_rest": f"{p.gateway_url}/v2/models/{DEPLOYMENT}"}
    demo.console.rule("[bold]The platform keeps running")
    demo.console.print(f"gateway      {urls['gateway']}   (try {urls['gateway']}/v1/models)")
    demo.console.print(f"OpenAPI      {urls['openapi']}")
    demo.console.print(f"MLflow UI    {urls['mlflow']}   "
                       "(runs of experiment 'fraud-detector-demo')")
    demo.console.print(f"dashboard    {urls['dashboard']}?key=<admin key>   "
                       "(performance, drift, worst slices)")
    demo.console.print(f"inference    POST {urls['oip_rest']}/infer   (Open Inference Protocol v2, "
                       "through the gateway)")
    demo.console.print(f"admin key    in {p.admin_key_file}; `modelplane down` stops it all")
    return urls
