"""``modelplane.serving.v1`` messages <-> serving's domain objects: deployments and what
is loaded for them (:mod:`.deployment`), batch jobs (:mod:`.batch_job`), rollouts, their
evidence and events (:mod:`.rollout`). Translation only, plus the one check a message's
shape needs (a rollout names at most one proxy and one operations check).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2

from modelplane.api.v1 import annotations_pb2 as access_pb2
from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.kit.timestamps import time_to_pb
from modelplane.serving.batch_job import BatchJob, BatchJobState
from modelplane.serving.deployment import (
    Access,
    AccessPolicy,
    CircuitBreakerSettings,
    Deployment,
    DeploymentState,
    Ensemble,
    EnsembleMethod,
    FallbackPolicy,
    FeatureBinding,
    LoadedModelInfo,
    ModelTarget,
    Route,
)
from modelplane.serving.deployment_service import DeploymentView
from modelplane.serving.rollout import (
    DEFAULT_LATENCY_FACTOR,
    DEFAULT_LATENCY_SLACK_MS,
    DEFAULT_MAX_PREDICTION_DRIFT,
    DEFAULT_MIN_RECORDS,
    DEFAULT_MIN_REQUESTS,
    Analysis,
    EventType,
    Evidence,
    OperationsCheck,
    ProxyCheck,
    Rollout,
    RolloutEvent,
    RolloutState,
    RolloutStep,
    SliceCheck,
)
from modelplane.serving.v1 import serving_pb2 as pb

_ACCESS_FROM_PB = {access_pb2.ACCESS_READ: Access.READ, access_pb2.ACCESS_WRITE: Access.WRITE,
                   access_pb2.ACCESS_ADMIN: Access.ADMIN}
_ACCESS_TO_PB = {v: k for k, v in _ACCESS_FROM_PB.items()}
_METHOD_FROM_PB = {pb.ENSEMBLE_METHOD_AVERAGE: EnsembleMethod.AVERAGE,
                   pb.ENSEMBLE_METHOD_VOTE: EnsembleMethod.VOTE,
                   pb.ENSEMBLE_METHOD_CHAIN: EnsembleMethod.CHAIN}
_METHOD_TO_PB = {v: k for k, v in _METHOD_FROM_PB.items()}
_STATE_TO_PB = {DeploymentState.LOADING: pb.DEPLOYMENT_STATE_LOADING,
                DeploymentState.READY: pb.DEPLOYMENT_STATE_READY,
                DeploymentState.FAILED: pb.DEPLOYMENT_STATE_FAILED}
_JOB_STATE_TO_PB = {BatchJobState.PENDING: pb.BATCH_JOB_STATE_PENDING,
                    BatchJobState.RUNNING: pb.BATCH_JOB_STATE_RUNNING,
                    BatchJobState.SUCCEEDED: pb.BATCH_JOB_STATE_SUCCEEDED,
                    BatchJobState.FAILED: pb.BATCH_JOB_STATE_FAILED}


def _seconds_from_pb(d: Any, default: float) -> float:
    value = d.seconds + d.nanos / 1e9
    return value if value > 0 else default


def logging_from_pb(value: int) -> bool:
    """``prediction_logging``: on unless the message says OFF."""
    return value != pb.PREDICTION_LOGGING_OFF


def logging_to_pb(enabled: bool) -> Any:
    return pb.PREDICTION_LOGGING_ON if enabled else pb.PREDICTION_LOGGING_OFF


# --- protobuf → domain ----------------------------------------------------------------------
def target_from_pb(t: Any) -> ModelTarget:
    return ModelTarget(model=t.model, alias=t.alias, version=t.version)


def routes_from_pb(split: Any) -> tuple[Route, ...]:
    return tuple(Route(target_from_pb(r.target), r.weight, r.label) for r in split.routes)


def deployment_from_pb(m: Any) -> Deployment:
    cb = m.fallback.circuit_breaker
    defaults = CircuitBreakerSettings()
    breaker = CircuitBreakerSettings(
        error_rate_threshold=cb.error_rate_threshold or defaults.error_rate_threshold,
        window_seconds=_seconds_from_pb(cb.window, defaults.window_seconds),
        minimum_requests=cb.minimum_requests or defaults.minimum_requests,
        open_seconds=_seconds_from_pb(cb.open_duration, defaults.open_seconds))
    ensemble = None
    if m.HasField("ensemble") and (m.ensemble.members or m.ensemble.method):
        ensemble = Ensemble(_METHOD_FROM_PB.get(m.ensemble.method, EnsembleMethod.AVERAGE),
                            tuple(target_from_pb(t) for t in m.ensemble.members),
                            tuple(m.ensemble.weights))
    features = None
    if m.HasField("features") and (m.features.feature_refs or m.features.entity_keys):
        features = FeatureBinding(tuple(m.features.feature_refs), tuple(m.features.entity_keys),
                                  m.features.full_feature_names)
    return Deployment(
        name=m.name, model=m.model, description=m.description,
        routes=routes_from_pb(m.traffic_split),
        shadows=tuple(target_from_pb(t) for t in m.shadows),
        fallback=FallbackPolicy(tuple(target_from_pb(t) for t in m.fallback.chain),
                                _seconds_from_pb(m.fallback.timeout, 1.0), breaker),
        ensemble=ensemble, features=features, sticky_key=m.sticky_key,
        access=AccessPolicy(tuple(m.access.infer_principals),
                            _ACCESS_FROM_PB.get(m.access.infer_access, Access.READ),
                            tuple(m.access.manage_principals),
                            _ACCESS_FROM_PB.get(m.access.manage_access, Access.WRITE)),
        logging_enabled=logging_from_pb(m.prediction_logging),
        etag=m.etag)


# --- domain → protobuf ----------------------------------------------------------------------
def target_to_pb(t: ModelTarget) -> pb.ModelTarget:
    if t.alias:
        return pb.ModelTarget(model=t.model, alias=t.alias)
    return pb.ModelTarget(model=t.model, version=t.version)


def duration_to_pb(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def loaded_model_to_pb(m: LoadedModelInfo) -> pb.LoadedModel:
    return pb.LoadedModel(target=target_to_pb(m.target), model=m.model, version=m.version,
                          source_uri=m.source_uri, bento_model_tag=m.bento_model_tag,
                          load_time=time_to_pb(m.load_time))


def deployment_to_pb(view: DeploymentView) -> pb.Deployment:
    d = view.deployment
    cb = d.fallback.circuit_breaker
    m = pb.Deployment(
        name=d.name, description=d.description, model=d.model,
        traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=target_to_pb(r.target), weight=r.weight, label=r.label)
            for r in d.routes]),
        shadows=[target_to_pb(t) for t in d.shadows],
        fallback=pb.FallbackPolicy(
            chain=[target_to_pb(t) for t in d.fallback.chain],
            timeout=duration_to_pb(d.fallback.timeout_seconds),
            circuit_breaker=pb.CircuitBreaker(
                error_rate_threshold=cb.error_rate_threshold,
                window=duration_to_pb(cb.window_seconds),
                minimum_requests=cb.minimum_requests,
                open_duration=duration_to_pb(cb.open_seconds))),
        sticky_key=d.sticky_key,
        access=pb.AccessPolicy(infer_principals=list(d.access.infer_principals),
                               infer_access=_ACCESS_TO_PB[d.access.infer_access],
                               manage_principals=list(d.access.manage_principals),
                               manage_access=_ACCESS_TO_PB[d.access.manage_access]),
        prediction_logging=logging_to_pb(d.logging_enabled),
        state=_STATE_TO_PB[view.state], state_message=view.state_message,
        loaded_models=[loaded_model_to_pb(x) for x in view.loaded_models],
        create_time=time_to_pb(d.create_time), update_time=time_to_pb(d.update_time), etag=d.etag,
        generation=d.generation)
    if d.ensemble is not None:
        m.ensemble.CopyFrom(pb.Ensemble(method=_METHOD_TO_PB[d.ensemble.method],
                                        members=[target_to_pb(t) for t in d.ensemble.members],
                                        weights=list(d.ensemble.weights)))
    if d.features is not None:
        m.features.CopyFrom(pb.FeatureBinding(feature_refs=list(d.features.feature_refs),
                                              entity_keys=list(d.features.entity_keys),
                                              full_feature_names=d.features.full_feature_names))
    return m


def batch_job_to_pb(j: BatchJob) -> pb.BatchJob:
    m = pb.BatchJob(id=j.id, deployment=j.deployment, output_uri=j.output_uri,
                    prediction_logging=logging_to_pb(j.logging_enabled),
                    state=_JOB_STATE_TO_PB[j.state], error_message=j.error_message,
                    rows_total=j.rows_total, rows_scored=j.rows_scored, model=j.model,
                    model_version=j.model_version, create_time=time_to_pb(j.create_time),
                    start_time=time_to_pb(j.start_time), end_time=time_to_pb(j.end_time))
    if j.target is not None:
        m.target.CopyFrom(target_to_pb(j.target))
    if j.dataset:
        m.dataset = j.dataset
    elif j.parquet_uri:
        m.parquet_uri = j.parquet_uri
    return m


_ROLLOUT_STATE_TO_PB = {s: getattr(pb, f"ROLLOUT_STATE_{s.value}") for s in RolloutState}
_EVENT_TYPE_TO_PB = {t: getattr(pb, f"ROLLOUT_EVENT_TYPE_{t.value}") for t in EventType}


def _one_check(m: Any, kind: str) -> Any:
    """The analysis' check of ``kind`` (proxy, operations), None; two are an error."""
    found = [(i, getattr(c, kind)) for i, c in enumerate(m.analysis.checks)
             if c.HasField(kind)]
    if len(found) > 1:
        raise InvalidArgument(
            f"invalid rollout {m.name!r}: at most one {kind} check",
            reason="INVALID_ROLLOUT", metadata={"rollout": m.name},
            field_violations=[FieldViolation(f"rollout.analysis.checks[{found[1][0]}].{kind}",
                                             f"at most one {kind} check")])
    return found[0][1] if found else None


def _proxy_from_pb(p: Any) -> ProxyCheck | None:
    if p is None:
        return None
    return ProxyCheck(p.max_prediction_drift or DEFAULT_MAX_PREDICTION_DRIFT,
                      p.min_records or DEFAULT_MIN_RECORDS, p.estimated_accuracy,
                      p.estimated_margin, p.advance_without_actuals)


def _operations_from_pb(o: Any) -> OperationsCheck | None:
    if o is None:
        return None
    slack = (o.latency_p99_slack.seconds * 1e3 + o.latency_p99_slack.nanos / 1e6
             if o.HasField("latency_p99_slack") else DEFAULT_LATENCY_SLACK_MS)
    return OperationsCheck(o.error_rate_margin, o.fallback_rate_margin,
                           o.latency_p99_factor or DEFAULT_LATENCY_FACTOR, slack,
                           o.min_requests or DEFAULT_MIN_REQUESTS)


def rollout_from_pb(m: Any) -> Rollout:
    quality = next((c.quality for c in m.analysis.checks if c.HasField("quality")), None)
    a = m.analysis
    defaults = Analysis()
    metric = ("ACCURACY" if quality is None or quality.metric in (
        pb.ROLLOUT_METRIC_UNSPECIFIED, pb.ROLLOUT_METRIC_ACCURACY)
        else pb.RolloutMetric.Name(quality.metric).removeprefix("ROLLOUT_METRIC_")
        if quality.metric in pb.RolloutMetric.values() else str(quality.metric))
    margin = quality.margin if quality is not None else 0.0
    # MAE's mixture scale is in the target's units: the margin is the natural size
    mixture_default = margin if metric == "MAE" and margin > 0 else defaults.mixture_scale
    proxy = _proxy_from_pb(_one_check(m, "proxy"))
    operations = _operations_from_pb(_one_check(m, "operations"))
    return Rollout(
        name=m.name, deployment=m.deployment, challenger=target_from_pb(m.challenger),
        champion_alias=m.champion_alias,
        steps=tuple(RolloutStep(s.weight, s.min_duration.seconds + s.min_duration.nanos / 1e9,
                                s.min_samples) for s in m.steps),
        analysis=Analysis(
            metric=metric, margin=margin, alpha=a.alpha or defaults.alpha,
            positive_class=quality.positive_class if quality is not None else "",
            mixture_scale=a.mixture_scale or mixture_default,
            min_labeled=a.min_labeled or defaults.min_labeled,
            slices=tuple(SliceCheck(c.slice.feature, c.slice.margin, c.slice.min_labeled)
                         for c in m.analysis.checks if c.HasField("slice")),
            proxy=proxy, operations=operations))


def evidence_to_pb(e: Evidence | None) -> pb.RolloutEvidence | None:
    if e is None:
        return None
    return pb.RolloutEvidence(
        time=time_to_pb(e.time), champion_labeled=e.champion.labeled,
        champion_value=e.champion.metric_value(e.metric),
        challenger_labeled=e.challenger.labeled,
        challenger_value=e.challenger.metric_value(e.metric),
        difference=e.difference, likelihood_ratio=e.likelihood_ratio, threshold=e.threshold,
        step_labeled=e.step_labeled,
        slices=[pb.RolloutSliceEvidence(
            feature=s.feature, value=s.value, champion_labeled=s.champion.labeled,
            champion_value=s.champion.metric_value(e.metric),
            challenger_labeled=s.challenger.labeled,
            challenger_value=s.challenger.metric_value(e.metric), difference=s.difference,
            likelihood_ratio=s.likelihood_ratio, threshold=s.threshold) for s in e.slices],
        proxy=pb.RolloutProxyEvidence(
            champion_records=e.proxy.champion_records,
            challenger_records=e.proxy.challenger_records,
            prediction_drift=e.proxy.prediction_drift, drift_threshold=e.proxy.drift_threshold,
            estimated=e.proxy.estimated,
            champion_estimated_accuracy=e.proxy.champion_estimated,
            challenger_estimated_accuracy=e.proxy.challenger_estimated,
            likelihood_ratio=e.proxy.likelihood_ratio, threshold=e.proxy.threshold,
            step_records=e.proxy.step_records) if e.proxy is not None else None,
        operations=pb.RolloutOperationsEvidence(
            champion_requests=o.champion_requests, challenger_requests=o.challenger_requests,
            champion_error_rate=o.champion_error_rate,
            challenger_error_rate=o.challenger_error_rate,
            error_likelihood_ratio=o.error_likelihood_ratio,
            champion_fallback_rate=o.champion_fallback_rate,
            challenger_fallback_rate=o.challenger_fallback_rate,
            fallback_likelihood_ratio=o.fallback_likelihood_ratio,
            champion_latency_p99=duration_to_pb(o.champion_p99_ms / 1e3),
            challenger_latency_p99=duration_to_pb(o.challenger_p99_ms / 1e3),
            latency_bound=duration_to_pb(o.latency_bound_ms / 1e3),
            challenger_over_bound=o.challenger_over_bound,
            latency_likelihood_ratio=o.latency_likelihood_ratio, threshold=o.threshold)
        if (o := e.operations) is not None else None)


def rollout_to_pb(r: Rollout) -> pb.Rollout:
    a = r.analysis
    return pb.Rollout(
        name=r.name, deployment=r.deployment, challenger=target_to_pb(r.challenger),
        champion_alias=r.champion_alias,
        steps=[pb.RolloutStep(weight=s.weight, min_duration=duration_to_pb(s.min_duration_seconds),
                              min_samples=s.min_samples) for s in r.steps],
        analysis=pb.RolloutAnalysis(
            checks=[pb.RolloutCheck(quality=pb.QualityCheck(
                metric=pb.RolloutMetric.Value(f"ROLLOUT_METRIC_{a.metric}"), margin=a.margin,
                positive_class=a.positive_class))]
            + [pb.RolloutCheck(slice=pb.SliceCheck(feature=c.feature, margin=c.margin,
                                                   min_labeled=c.min_labeled))
               for c in a.slices]
            + ([pb.RolloutCheck(proxy=pb.ProxyCheck(
                max_prediction_drift=p.max_prediction_drift, min_records=p.min_records,
                estimated_accuracy=p.estimated_accuracy, estimated_margin=p.estimated_margin,
                advance_without_actuals=p.advance_without_actuals))]
               if (p := a.proxy) is not None else [])
            + ([pb.RolloutCheck(operations=pb.OperationsCheck(
                error_rate_margin=o.error_rate_margin,
                fallback_rate_margin=o.fallback_rate_margin,
                latency_p99_factor=o.latency_p99_factor,
                latency_p99_slack=duration_to_pb(o.latency_p99_slack_ms / 1e3),
                min_requests=o.min_requests))]
               if (o := a.operations) is not None else []),
            alpha=a.alpha, mixture_scale=a.mixture_scale, min_labeled=a.min_labeled),
        state=_ROLLOUT_STATE_TO_PB[r.state], state_message=r.state_message,
        current_step=r.current_step, step_start_time=time_to_pb(r.step_start_time),
        challenger_version=r.challenger_version, champion_version=r.champion_version,
        evidence=evidence_to_pb(r.evidence), create_time=time_to_pb(r.create_time),
        update_time=time_to_pb(r.update_time), revision=r.revision, model=r.model)


def rollout_event_to_pb(e: RolloutEvent) -> pb.RolloutEvent:
    return pb.RolloutEvent(rollout=e.rollout, sequence=e.sequence, time=time_to_pb(e.time),
                           type=_EVENT_TYPE_TO_PB[e.type], state=_ROLLOUT_STATE_TO_PB[e.state],
                           step=e.step, weight=e.weight, message=e.message, actor=e.actor,
                           evidence=evidence_to_pb(e.evidence))
