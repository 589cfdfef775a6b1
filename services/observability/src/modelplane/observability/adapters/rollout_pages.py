"""Serving's rollouts, as the dashboard's rollout page reads them (issue #17).

:class:`RolloutPageSource` asks serving's ``GetRollout``, ``ListRolloutEvents`` and
``ListRollouts`` over a channel made from ``MODELPLANE_OBSERVABILITY_SERVING_TARGET``
(with the service's own API key) and turns the answers into plain dataclasses, so
the dashboard never imports grpc. Serving is optional: :class:`ServingUnavailable`
says why a page cannot show rollouts (not configured, not reachable, not found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from google.protobuf import timestamp_pb2

from modelplane.serving.v1 import serving_pb2 as spb
from modelplane.serving.v1 import serving_pb2_grpc

#: the dashboard waits this long for serving before saying it is not reachable
TIMEOUT_SECONDS = 3.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ServingUnavailable(Exception):
    """Serving cannot tell (not configured, not reachable, or no such rollout)."""


@dataclass(frozen=True)
class SideCounts:
    labeled: int
    value: float


@dataclass(frozen=True)
class CheckEvidence:
    """One check at the controller's last look: ``overall`` or ``feature = value``."""

    name: str
    champion: SideCounts
    challenger: SideCounts
    margin: float
    likelihood_ratio: float
    threshold: float
    #: serving's, oriented so that > 0 means the challenger is better (for MAE,
    #: lower is better: champion - challenger)
    difference: float = 0.0


@dataclass(frozen=True)
class SignalEvidence:
    """One row of a proxy or operations check at the controller's last look, as text."""

    check: str
    signal: str
    champion: str
    challenger: str
    limit: str


@dataclass(frozen=True)
class RolloutSummary:
    name: str
    deployment: str
    model: str
    state: str
    state_message: str
    champion_alias: str
    champion_version: str
    challenger_version: str
    weights: tuple[float, ...]
    current_step: int
    alpha: float
    create_time: datetime | None
    update_time: datetime | None
    checks: list[CheckEvidence] = field(default_factory=list)
    #: the proxy and operations checks' numbers (roll back or hold only)
    signals: list[SignalEvidence] = field(default_factory=list)
    #: the quality check's metric as people read it ("accuracy", "MAE", ...)
    metric: str = "accuracy"

    @property
    def share_metric(self) -> bool:
        """A proportion in [0, 1] (Wilson intervals apply); MAE is not."""
        return self.metric != "MAE"


@dataclass(frozen=True)
class RolloutEventView:
    time: datetime
    type: str
    state: str
    step: int
    weight: float
    message: str
    actor: str


def _time(ts: timestamp_pb2.Timestamp) -> datetime | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def _state(value: int) -> str:
    return spb.RolloutState.Name(value).removeprefix("ROLLOUT_STATE_")


def _summary(r: spb.Rollout) -> RolloutSummary:
    quality = next((c.quality for c in r.analysis.checks if c.HasField("quality")), None)
    margins = {c.slice.feature: c.slice.margin for c in r.analysis.checks if c.HasField("slice")}
    ev = r.evidence
    checks: list[CheckEvidence] = []
    if r.HasField("evidence"):
        checks.append(CheckEvidence(
            "overall", SideCounts(ev.champion_labeled, ev.champion_value),
            SideCounts(ev.challenger_labeled, ev.challenger_value),
            quality.margin if quality is not None else 0.0, ev.likelihood_ratio, ev.threshold,
            ev.difference))
        for s in ev.slices:
            checks.append(CheckEvidence(
                f"{s.feature} = {s.value}", SideCounts(s.champion_labeled, s.champion_value),
                SideCounts(s.challenger_labeled, s.challenger_value),
                margins.get(s.feature, 0.0), s.likelihood_ratio, s.threshold, s.difference))
    return RolloutSummary(
        r.name, r.deployment, r.model or r.challenger.model, _state(r.state),
        r.state_message, r.champion_alias or "champion", r.champion_version,
        r.challenger_version, tuple(s.weight for s in r.steps), r.current_step,
        r.analysis.alpha, _time(r.create_time), _time(r.update_time), checks, _signals(r),
        _metric(quality))


def _metric(quality: spb.QualityCheck | None) -> str:
    if quality is None or quality.metric in (spb.ROLLOUT_METRIC_UNSPECIFIED,
                                             spb.ROLLOUT_METRIC_ACCURACY):
        return "accuracy"
    if quality.metric == spb.ROLLOUT_METRIC_MAE:
        return "MAE"
    name = spb.RolloutMetric.Name(quality.metric).removeprefix("ROLLOUT_METRIC_").lower()
    return f"{name} of class {quality.positive_class!r}"


def _signals(r: spb.Rollout) -> list[SignalEvidence]:
    out: list[SignalEvidence] = []
    proxy = next((c.proxy for c in r.analysis.checks if c.HasField("proxy")), None)
    ev = r.evidence
    if proxy is not None and ev.HasField("proxy"):
        p = ev.proxy
        out += [SignalEvidence("proxy", "records (actuals or not)", str(p.champion_records),
                               str(p.challenger_records), f">= {proxy.min_records} each"),
                SignalEvidence("proxy", "prediction drift (Jensen-Shannon)", "reference",
                               f"{p.prediction_drift:.4f}", f"<= {p.drift_threshold:g}")]
        if p.estimated:
            out.append(SignalEvidence(
                "proxy", "estimated accuracy (CBPE)", f"{p.champion_estimated_accuracy:.4f}",
                f"{p.challenger_estimated_accuracy:.4f}",
                f"margin {proxy.estimated_margin:g}; ratio {p.likelihood_ratio:.3g} / "
                f"{p.threshold:.3g}"))
    ops = next((c.operations for c in r.analysis.checks if c.HasField("operations")), None)
    if ops is not None and ev.HasField("operations"):
        o = ev.operations
        out += [
            SignalEvidence("operations", "requests", str(o.champion_requests),
                           str(o.challenger_requests), f">= {ops.min_requests} each"),
            SignalEvidence("operations", "error rate", f"{o.champion_error_rate:.4f}",
                           f"{o.challenger_error_rate:.4f}",
                           f"margin {ops.error_rate_margin:g}; ratio "
                           f"{o.error_likelihood_ratio:.3g} / {o.threshold:.3g}"),
            SignalEvidence("operations", "fallback rate", f"{o.champion_fallback_rate:.4f}",
                           f"{o.challenger_fallback_rate:.4f}",
                           f"margin {ops.fallback_rate_margin:g}; ratio "
                           f"{o.fallback_likelihood_ratio:.3g} / {o.threshold:.3g}"),
            SignalEvidence("operations", "p99 latency",
                           f"{o.champion_latency_p99.ToMicroseconds() / 1000:.1f} ms",
                           f"{o.challenger_latency_p99.ToMicroseconds() / 1000:.1f} ms",
                           f"<= {o.latency_bound.ToMicroseconds() / 1000:.1f} ms "
                           f"({o.challenger_over_bound:.2%} of requests above)")]
    return out


class RolloutPageSource:
    def __init__(self, channel: grpc.aio.Channel | None, target: str = "") -> None:
        self._stub = serving_pb2_grpc.ServingServiceStub(channel) if channel else None
        self.target = target

    def _check(self) -> serving_pb2_grpc.ServingServiceStub:
        if self._stub is None:
            raise ServingUnavailable("serving is not configured for observability "
                                     "(MODELPLANE_OBSERVABILITY_SERVING_TARGET)")
        return self._stub

    def _failed(self, exc: grpc.aio.AioRpcError, what: str) -> ServingUnavailable:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return ServingUnavailable(f"serving has no {what}")
        return ServingUnavailable(f"serving at {self.target} is not reachable "
                                  f"({exc.code().name.lower()}: {exc.details() or ''})")

    async def rollout(self, name: str) -> tuple[RolloutSummary, list[RolloutEventView]]:
        stub = self._check()
        try:
            r = await stub.GetRollout(spb.GetRolloutRequest(name=name), timeout=TIMEOUT_SECONDS)
            events: list[RolloutEventView] = []
            token = ""
            for _ in range(20):  # at most 20 pages of 1000 events
                page = await stub.ListRolloutEvents(spb.ListRolloutEventsRequest(
                    name=name, page_size=1000, page_token=token), timeout=TIMEOUT_SECONDS)
                events += [RolloutEventView(
                    _time(e.time) or EPOCH, spb.RolloutEventType.Name(e.type)
                    .removeprefix("ROLLOUT_EVENT_TYPE_"), _state(e.state), e.step, e.weight,
                    e.message, e.actor) for e in page.events]
                token = page.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as exc:
            raise self._failed(exc, f"rollout {name!r}") from None
        return _summary(r), events

    async def rollouts_of(self, model: str) -> list[RolloutSummary]:
        """The rollouts of ``model`` (from the first 1000), newest first."""
        stub = self._check()
        try:
            page = await stub.ListRollouts(spb.ListRolloutsRequest(page_size=1000),
                                           timeout=TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise self._failed(exc, "rollouts") from None
        out = [_summary(r) for r in page.rollouts if (r.model or r.challenger.model) == model]
        return sorted(out, key=lambda r: r.create_time or EPOCH, reverse=True)
