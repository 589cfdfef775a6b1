"""The request path: every inference request against the deployments loaded in memory.

Transport-neutral (the OIP gRPC servicer and the REST app are thin adapters):
access check → online features → route choice (weighted / sticky) → model
call with the deployment's timeout and circuit breaker → fallback chain →
response with prediction id and answering version; then, off the response
path, shadows and the prediction log. The deployments and their models come from
:mod:`.loaded_models`; this module only reads them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from opentelemetry.trace import get_current_span as _get_current_span

from modelplane.kit.auth import Principal
from modelplane.kit.errors import (
    InvalidArgument,
    NotFound,
    Unavailable,
)
from modelplane.serving import route_stats
from modelplane.serving.deployment import (
    Deployment,
    DeploymentState,
    EnsembleMethod,
    ModelTarget,
    Route,
)
from modelplane.serving.deployment_access import check_infer
from modelplane.serving.loaded_models import DeploymentRuntime, LoadedModels
from modelplane.serving.prediction_log import PredictionLogger, PredictionRecord
from modelplane.serving.servable_model import ModelInput, ModelOutputError, ServableModel
from modelplane.serving.serving_metrics import ServingMetrics

# the logger's name from before the data plane was split (what log filters select)
log = logging.getLogger("modelplane.serving.data_plane")

OUTPUT_NAME = "output-0"
FALLBACK_MODEL_ERROR = "MODEL_ERROR"
FALLBACK_TIMEOUT = "TIMEOUT"
FALLBACK_CIRCUIT_OPEN = "CIRCUIT_OPEN"


class OnlineFeatureSource(Protocol):
    """Online features for a deployment's feature binding (``adapters.online_features``
    has the featurestore's client)."""

    async def get_online_features(self, feature_refs: Sequence[str],
                                  entities: dict[str, np.ndarray],
                                  full_feature_names: bool) -> dict[str, np.ndarray]:
        """Feature columns (one value per entity row) by column name."""
        ...

    async def close(self) -> None: ...


@dataclass
class InferenceRequest:
    model_name: str
    inputs: ModelInput
    request_id: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: OIP ``model_version``: answer with this loaded version of the deployment's model
    model_version: str = ""


@dataclass
class InferenceResponse:
    model_name: str
    model_version: str
    request_id: str
    outputs: list[tuple[str, np.ndarray]]
    parameters: dict[str, Any]


class _Failed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Predictor:
    """Answers inference requests with the deployments ``models`` has loaded."""

    def __init__(self, models: LoadedModels, logger: PredictionLogger,
                 metrics: ServingMetrics, features: OnlineFeatureSource | None = None, *,
                 shadow_concurrency: int = 64) -> None:
        self.models = models
        self.logger = logger
        self.metrics = metrics
        #: request outcomes per routed version, added to the shared store by serving's runtime
        self.route_stats = route_stats.RouteStatsRecorder()
        self.features = features
        self._shadow_limit = shadow_concurrency
        self._shadow_inflight = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self.logger.start()

    # --- inference ----------------------------------------------------------------------
    async def infer(self, req: InferenceRequest, principal: Principal) -> InferenceResponse:
        started = time.perf_counter()
        rt = self.models.runtime(req.model_name)
        check_infer(rt, principal)
        d = rt.deployment
        if rt.state is not DeploymentState.READY:
            raise Unavailable(f"model {d.name!r} is not ready: {rt.state_message}",
                              reason="DEPLOYMENT_NOT_READY", metadata={"deployment": d.name})
        data = req.inputs
        fetched: dict[str, np.ndarray] = {}
        if d.features is not None and d.features.feature_refs:
            data, fetched = await self._join_features(d, data)

        sticky = ""
        if d.sticky_key:
            value = req.parameters.get(d.sticky_key)
            if value is None:
                value = req.headers.get(d.sticky_key.lower())
            sticky = "" if value is None else str(value)
        route = rt.routes[rt.router.choose(sticky)]
        if req.model_version:
            route = self._pinned_route(rt, req.model_version)
        timeout = d.fallback.timeout_seconds
        # the version the route sent it to: its outcome counts for the operations check
        routed = rt.models.get(route.target.key) if d.ensemble is None else None

        output: np.ndarray | None = None
        answered: ServableModel | None = None
        label = route.label
        fallback_reason = ""
        version = ""
        answered_model = d.model
        if d.ensemble is not None:
            try:
                output, version = await self._ensemble(rt, data, timeout)
                label = "ensemble"
            except _Failed as exc:
                fallback_reason = exc.reason
        else:
            try:
                answered, output = await self._call(rt, route.target.key, data, timeout,
                                                    primary=True)
            except _Failed as exc:
                fallback_reason = exc.reason
        if output is None:
            for i, target in enumerate(d.fallback_chain()):
                try:
                    answered, output = await self._call(rt, target.key, data, timeout,
                                                        primary=False)
                    label = f"fallback[{i}]"
                    break
                except _Failed:
                    continue
            if output is None:
                self.metrics.requests.labels(d.name, "", label, "error").inc()
                if routed is not None:
                    self.route_stats.record(d.name, routed.version, route_stats.ERROR)
                raise Unavailable(
                    f"model {d.name!r} could not answer: the routed model failed "
                    f"({fallback_reason}) and no fallback succeeded",
                    reason="ALL_MODELS_FAILED",
                    metadata={"deployment": d.name, "cause": fallback_reason})
        if answered is not None:
            answered_model, version = answered.model, answered.version
        prediction_id = _ids.next()
        elapsed = time.perf_counter() - started
        m = self.metrics
        m.requests.labels(d.name, version, label, "ok").inc()
        m.latency.labels(d.name, version).observe(elapsed)
        if fallback_reason:
            m.fallbacks.labels(d.name, version, fallback_reason).inc()
        if routed is not None:
            self.route_stats.record(d.name, routed.version, route_stats.FALLBACK
                                    if fallback_reason else route_stats.OK, elapsed)
        trace_id, span_id = _trace_context()
        written = self.logger.log(PredictionRecord(
            prediction_id, d.name, answered_model, version, "production", time.time(),
            req.inputs, output, elapsed * 1000.0, fetched, label, trace_id,
            fallback_reason, "", span_id)) if d.logging_enabled else None
        if d.shadows:
            self._mirror(rt, data, prediction_id, trace_id, span_id)
        if written is not None:
            await written  # on disk (write-ahead log, group commit) before the answer
        params: dict[str, Any] = {"prediction_id": prediction_id, "model_version": version,
                                  "registered_model": answered_model, "route": label,
                                  "fallback": bool(fallback_reason)}
        if fallback_reason:
            params["fallback_reason"] = fallback_reason
        return InferenceResponse(d.name, version, req.request_id, [(OUTPUT_NAME, output)],
                                 params)

    @staticmethod
    def _pinned_route(rt: DeploymentRuntime, version: str) -> Route:
        """The route serving ``version`` of the deployment's model, else any loaded target."""
        for r in rt.routes:
            m = rt.models.get(r.target.key)
            if m is not None and m.version == version:
                return r
        for key, m in rt.models.items():
            if m.model == rt.deployment.model and m.version == version:
                return Route(rt.targets[key], 0.0, f"v{version}")
        raise NotFound(f"model {rt.deployment.name!r} does not serve version {version!r} "
                       f"(loaded: {', '.join(sorted({m.version for m in rt.models.values()}))})",
                       reason="MODEL_VERSION_NOT_SERVED",
                       metadata={"deployment": rt.deployment.name, "version": version})

    async def _call(self, rt: DeploymentRuntime, key: str, data: ModelInput, timeout: float,
                    *, primary: bool) -> tuple[ServableModel, np.ndarray]:
        """Call one model through its breaker and timeout; _Failed when it does not answer."""
        model = rt.models.get(key)
        breaker = rt.breakers.get(key)
        name = rt.deployment.name
        if model is None:
            raise _Failed(FALLBACK_MODEL_ERROR, f"{key} is not loaded")
        if breaker is not None and not breaker.allow():
            raise _Failed(FALLBACK_CIRCUIT_OPEN, f"circuit open for {key}")
        try:
            out = await model.predict(data, timeout)
        except InvalidArgument:
            if breaker is not None and breaker.is_open:
                breaker.record(True)  # the trial call reached the model; it was the input
            if primary:
                raise
            raise _Failed(FALLBACK_MODEL_ERROR, f"{key} rejected the input") from None
        except TimeoutError:
            self.metrics.errors.labels(name, model.version, FALLBACK_TIMEOUT).inc()
            if breaker is not None:
                breaker.record(False)
            raise _Failed(FALLBACK_TIMEOUT, f"{key} took longer than {timeout}s") from None
        except Exception as exc:  # noqa: BLE001 - a broken model never breaks the server
            self.metrics.errors.labels(name, model.version, FALLBACK_MODEL_ERROR).inc()
            if breaker is not None:
                breaker.record(False)
            if not isinstance(exc, ModelOutputError):
                log.warning("model %s v%s raised %s: %s", model.model, model.version,
                            type(exc).__name__, exc)
            raise _Failed(FALLBACK_MODEL_ERROR, f"{key} failed: {exc}") from None
        if breaker is not None:
            breaker.record(True)
        return model, out

    async def _ensemble(self, rt: DeploymentRuntime, data: ModelInput,
                        timeout: float) -> tuple[np.ndarray, str]:
        ens = rt.deployment.ensemble
        assert ens is not None
        keys = [t.key for t in rt.deployment.ensemble_members()]
        versions: list[str] = []
        if ens.method is EnsembleMethod.CHAIN:
            current = data
            out: np.ndarray | None = None
            for i, key in enumerate(keys):
                model, out = await self._call(rt, key, current, timeout, primary=i == 0)
                versions.append(f"{model.model}:{model.version}")
                current = current.with_column(f"member{i}_output", out)
            assert out is not None
            return out, "+".join(versions)

        results = await asyncio.gather(*(self._call(rt, k, data, timeout, primary=True)
                                         for k in keys), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        outs = [np.asarray(r[1]) for r in results]  # type: ignore[index]
        versions = [f"{r[0].model}:{r[0].version}" for r in results]  # type: ignore[index]
        if ens.method is EnsembleMethod.AVERAGE:
            try:
                stacked = np.stack([o.astype(np.float64) for o in outs])
            except (ValueError, TypeError):
                raise _Failed(FALLBACK_MODEL_ERROR, "ensemble members' outputs differ in "
                              "shape or are not numeric") from None
            weights = np.asarray(ens.weights or [1.0] * len(outs), dtype=np.float64)
            combined = np.tensordot(weights / weights.sum(), stacked, axes=1)
            return combined, "+".join(versions)
        # VOTE: majority per row, ties to the earliest member.
        rows = outs[0].shape[0]
        voted = []
        for i in range(rows):
            counts: dict[Any, int] = {}
            order: list[Any] = []
            for o in outs:
                v = o[i].item() if hasattr(o[i], "item") else o[i]
                if v not in counts:
                    order.append(v)
                counts[v] = counts.get(v, 0) + 1
            best = max(counts.values())
            voted.append(next(v for v in order if counts[v] == best))
        return np.asarray(voted), "+".join(versions)

    async def _join_features(self, d: Deployment, data: ModelInput
                             ) -> tuple[ModelInput, dict[str, np.ndarray]]:
        binding = d.features
        assert binding is not None
        missing = [k for k in binding.entity_keys if k not in data.columns]
        if missing:
            raise InvalidArgument(
                f"model {d.name!r} looks up features by {', '.join(binding.entity_keys)}; "
                f"send them as input tensors (missing: {', '.join(missing)})",
                reason="ENTITY_KEY_MISSING", metadata={"deployment": d.name})
        if self.features is None:
            raise Unavailable("no featurestore is configured for online features",
                              reason="FEATURESTORE_NOT_CONFIGURED",
                              metadata={"deployment": d.name})
        entities = {k: np.asarray(data.columns[k]).reshape(-1) for k in binding.entity_keys}
        fetched = await self.features.get_online_features(
            binding.feature_refs, entities, binding.full_feature_names)
        joined = ModelInput(data.n_rows, dict(data.columns), data.matrix, data.matrix_name,
                            frozenset(binding.entity_keys))
        for name in binding.column_names():
            if name not in fetched:
                raise Unavailable(f"the featurestore did not return feature {name!r}",
                                  reason="FEATURE_NOT_RETURNED", metadata={"feature": name})
            joined = joined.with_column(name, fetched[name])
        return joined, fetched

    def _mirror(self, rt: DeploymentRuntime, data: ModelInput, parent_id: str,
                trace_id: str, span_id: str) -> None:
        d = rt.deployment
        for target in d.shadow_targets():
            if self._shadow_inflight >= self._shadow_limit:
                self.metrics.shadow.labels(d.name, "", "dropped").inc()
                continue
            self._shadow_inflight += 1
            task = asyncio.create_task(self._shadow(rt, target, data, parent_id, trace_id,
                                                    span_id))
            self._tasks.add(task)
            task.add_done_callback(self._shadow_done)

    def _shadow_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._shadow_inflight -= 1

    async def _shadow(self, rt: DeploymentRuntime, target: ModelTarget, data: ModelInput,
                      parent_id: str, trace_id: str, span_id: str) -> None:
        d = rt.deployment
        model = rt.models.get(target.key)
        if model is None:
            return
        started = time.perf_counter()
        try:
            out = await model.predict(data, d.fallback.timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - a shadow's failure is only counted
            self.metrics.shadow.labels(d.name, model.version, "error").inc()
            log.debug("shadow %s failed: %s", target.key, exc)
            return
        self.metrics.shadow.labels(d.name, model.version, "ok").inc()
        if d.logging_enabled:
            await self.logger.log(PredictionRecord(
                _ids.next(), d.name, model.model, model.version, "shadow", time.time(),
                data, out, (time.perf_counter() - started) * 1000.0, {}, f"shadow:{target.key}",
                trace_id, "", parent_id, span_id))

    async def close(self) -> None:
        """Wait for the shadows in flight, then flush (or spool) every prediction record."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        await self.logger.close()
        if self.features is not None:
            await self.features.close()


class _PredictionIds:
    """Prediction ids: random UUIDv4s as 32 hex digits (``uuid4().hex``'s format).

    Drawn from ``os.urandom`` 4 KiB at a time: one system call per 256 ids instead of one
    per request (``os.urandom`` releases the GIL, and getting it back from the model
    worker threads costs the event loop far more than the call). Event-loop thread only.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def next(self) -> str:
        if self._pos >= len(self._buf):
            self._buf = os.urandom(4096)
            self._pos = 0
        b = bytearray(self._buf[self._pos:self._pos + 16])
        self._pos += 16
        b[6] = (b[6] & 0x0F) | 0x40  # version 4
        b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
        return b.hex()


_ids = _PredictionIds()


def _trace_context() -> tuple[str, str]:
    """(trace id, span id) of the span serving this request; the span id only when that
    span is recording (sampled), so observability can join the prediction to it."""
    span = _get_current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return "", ""
    return (format(ctx.trace_id, "032x"),
            format(ctx.span_id, "016x") if span.is_recording() else "")
