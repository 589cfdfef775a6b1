"""The data plane: deployments loaded in memory and every inference request's path.

Transport-neutral (the OIP gRPC servicer and the REST app are thin adapters):
access check → online features → route choice (weighted / sticky) → model
call with the deployment's timeout and circuit breaker → fallback chain →
response with prediction id and answering version; then, off the response
path, shadows and the prediction log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from opentelemetry.trace import get_current_span as _get_current_span

from modelplane.kit.auth import Principal, Role
from modelplane.kit.backoff import Backoff
from modelplane.kit.errors import (
    FieldViolation,
    InvalidArgument,
    ModelplaneError,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from modelplane.serving import route_stats
from modelplane.serving.bento_models import BentoModelRepository
from modelplane.serving.circuit_breaker import CircuitBreaker
from modelplane.serving.deployment import (
    Access,
    Deployment,
    DeploymentState,
    EnsembleMethod,
    LoadedModelInfo,
    ModelTarget,
    Route,
)
from modelplane.serving.model_source import AliasEvent, ModelSource, is_transient
from modelplane.serving.prediction_log import PredictionLogger, PredictionRecord
from modelplane.serving.servable_model import ModelInput, ModelOutputError, ServableModel
from modelplane.serving.serving_metrics import ServingMetrics
from modelplane.serving.traffic_router import TrafficRouter

log = logging.getLogger("modelplane.serving.data_plane")

OUTPUT_NAME = "output-0"
_ROLE_FOR_ACCESS = {Access.READ: Role.READER, Access.WRITE: Role.WRITER, Access.ADMIN: Role.ADMIN}
FALLBACK_MODEL_ERROR = "MODEL_ERROR"
FALLBACK_TIMEOUT = "TIMEOUT"
FALLBACK_CIRCUIT_OPEN = "CIRCUIT_OPEN"
#: a deployment whose load failed because a dependency did not answer is retried after
#: ~1 s, 2 s, 4 s ... at most ~30 s apart (jittered: each wait is between half and all of
#: its step, so replicas do not retry in step), and at once when the registry's event
#: stream (re)connects ...
RETRY_INITIAL_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
#: ... for this many attempts (≈ 1.5 minutes). Then the deployment is FAILED with the last
#: error (the retry budget is spent) and retried only every EXHAUSTED_RETRY_SECONDS, or
#: at once, with a fresh budget, on an event: the registry stream reconnects, an alias
#: the deployment follows moves, or the deployment is changed.
LOAD_RETRY_BUDGET = 8
EXHAUSTED_RETRY_SECONDS = 300.0
#: the registry's alias event stream reconnects after ~1 s, 2 s ... at most ~30 s
#: (jittered; forever: it is how the registry's return is noticed)
STREAM_RETRY_INITIAL_SECONDS = 1.0
STREAM_RETRY_MAX_SECONDS = 30.0


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


@dataclass
class DeploymentRuntime:
    """A deployment as it runs now: its router, loaded models and breakers."""

    deployment: Deployment
    router: TrafficRouter
    routes: tuple[Route, ...]
    models: dict[str, ServableModel]
    breakers: dict[str, CircuitBreaker]
    state: DeploymentState = DeploymentState.READY
    state_message: str = ""
    targets: dict[str, ModelTarget] = field(default_factory=dict)
    #: not ready: failed load attempts so far, and the loop time of the next one
    #: (0 = none scheduled: a permanent failure, retried on alias events / reconnects)
    attempts: int = 0
    retry_at: float = 0.0
    #: the load retry budget is spent: FAILED, retried slowly or on an event
    budget_exhausted: bool = False

    def loaded_models(self) -> list[LoadedModelInfo]:
        return [LoadedModelInfo(self.targets[k], m.model, m.version, m.source_uri,
                                m.bento_model_tag, m.load_time)
                for k, m in self.models.items() if k in self.targets]


class _Failed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def may(principal: Principal, names: tuple[str, ...], access: Access) -> bool:
    """Does a per-deployment right (principal list + least role) admit ``principal``?"""
    if principal.role >= Role.ADMIN:
        return True
    if principal.role < _ROLE_FOR_ACCESS[access]:
        return False
    return not names or principal.name in names


class DataPlane:
    def __init__(self, source: ModelSource, repository: BentoModelRepository,
                 logger: PredictionLogger, metrics: ServingMetrics,
                 features: OnlineFeatureSource | None = None, *,
                 shadow_concurrency: int = 64, retire_seconds: float = 30.0,
                 load_retry_budget: int = LOAD_RETRY_BUDGET,
                 retry_initial_seconds: float = RETRY_INITIAL_SECONDS,
                 retry_max_seconds: float = RETRY_MAX_SECONDS,
                 exhausted_retry_seconds: float = EXHAUSTED_RETRY_SECONDS,
                 rng: random.Random | None = None) -> None:
        self.source = source
        self.repository = repository
        #: follow an alias only onto a version with a PASS validation (set by the server
        #: from its ``require_validation`` setting; off for a bare plane)
        self.require_validation = False
        self.logger = logger
        self.metrics = metrics
        #: request outcomes per routed version, added to the shared store by serving's main
        self.route_stats = route_stats.RouteStatsRecorder()
        self.features = features
        self._runtimes: dict[str, DeploymentRuntime] = {}
        self._shadow_limit = shadow_concurrency
        self._shadow_inflight = 0
        self._retire_seconds = retire_seconds
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._retry_task: asyncio.Task[None] | None = None
        self._retry_wake = asyncio.Event()
        self._rng = rng or random.Random()
        self._load_budget = max(1, load_retry_budget)
        self._load_backoff = Backoff(retry_initial_seconds, retry_max_seconds, self._rng)
        self._exhausted_retry_seconds = exhausted_retry_seconds
        self._stream_backoff = Backoff(STREAM_RETRY_INITIAL_SECONDS, STREAM_RETRY_MAX_SECONDS,
                                       self._rng)
        self._stream_connected_now = False
        self._stream_last_error = ""
        self._stream_next_attempt = 0.0
        #: the deployment change feed's state for readiness (set by the server when the
        #: store announces changes: several replicas on PostgreSQL)
        self.change_feed_state: Callable[[], dict[str, Any]] | None = None

    # --- deployments in memory ----------------------------------------------------------
    def runtime(self, name: str) -> DeploymentRuntime:
        rt = self._runtimes.get(name)
        if rt is None:
            raise NotFound(f"model {name!r} is not served here (no deployment of that name)",
                           reason="DEPLOYMENT_NOT_FOUND", metadata={"deployment": name})
        return rt

    def find(self, name: str) -> DeploymentRuntime | None:
        return self._runtimes.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._runtimes)

    async def _load(self, target: ModelTarget) -> ServableModel:
        resolved = await self.source.resolve(target)
        return await asyncio.to_thread(self.repository.load, resolved)

    async def build(self, deployment: Deployment,
                    previous: DeploymentRuntime | None = None, *,
                    recheck_aliases: bool = True) -> DeploymentRuntime:
        """Resolve and load every target of ``deployment`` (reusing what ``previous`` has).
        ``recheck_aliases=False`` reuses a loaded alias target without asking the registry
        first (a change another replica committed: the swap is immediate, and ``install``
        re-resolves the aliases right after it)."""
        targets = {t.key: t for t in deployment.all_targets()}
        models: dict[str, ServableModel] = {}

        async def one(key: str, target: ModelTarget) -> None:
            old = previous.models.get(key) if previous else None
            if old is not None and (target.version or not recheck_aliases):
                models[key] = old
                return
            if old is not None:
                resolved = await self.source.resolve(target)
                if resolved.version == old.version:
                    models[key] = old
                    return
                models[key] = await asyncio.to_thread(self.repository.load, resolved)
                return
            models[key] = await self._load(target)

        results = await asyncio.gather(*(one(k, t) for k, t in targets.items()),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # Close what this attempt loaded (retries must not pile up worker threads);
            # a permanent cause wins over a transient one.
            reused = {id(m) for m in previous.models.values()} if previous else set()
            for m in models.values():
                if id(m) not in reused:
                    m.close()
            raise next((e for e in errors if not is_transient(e)), errors[0])
        routes = deployment.effective_routes()
        cb = deployment.fallback.circuit_breaker
        breakers = {k: (previous.breakers[k] if previous and k in previous.breakers
                        and previous.breakers[k].settings == cb else CircuitBreaker(cb))
                    for k in targets}
        return DeploymentRuntime(deployment, TrafficRouter(deployment.name, routes), routes,
                                 models, breakers, targets=targets)

    def _observe(self, rt: DeploymentRuntime) -> None:
        name = rt.deployment.name
        m = self.metrics
        m.deployment_generation.labels(name).set(rt.deployment.generation)
        m.deployment_ready.labels(name).set(1 if rt.state is DeploymentState.READY else 0)
        m.deployment_load_failures.labels(name).set(rt.attempts)
        m.deployment_retry_budget_exhausted.labels(name).set(1 if rt.budget_exhausted else 0)

    def install(self, rt: DeploymentRuntime) -> None:
        previous = self._runtimes.get(rt.deployment.name)
        self._runtimes[rt.deployment.name] = rt
        self._observe(rt)
        if previous is not None:
            keep = {id(m) for m in rt.models.values()}
            self._retire([m for m in previous.models.values() if id(m) not in keep])
        if rt.state is DeploymentState.READY and any(t.alias for t in rt.targets.values()):
            # An alias that moved while the deployment loaded (before it was watched)
            # sent its event to nobody: look once more now that it is watched.
            try:
                task = asyncio.get_running_loop().create_task(self._reconcile(rt))
            except RuntimeError:  # no loop (a synchronous caller): the watcher resyncs
                return
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _reconcile(self, rt: DeploymentRuntime) -> None:
        for key, target in sorted(rt.targets.items()):
            loaded = rt.models.get(key)
            if not target.alias or loaded is None:
                continue
            try:
                resolved = await self.source.resolve(ModelTarget(model=target.model,
                                                                 alias=target.alias))
            except Exception as exc:  # noqa: BLE001 - the watcher will see it later
                log.debug("could not re-resolve %s after loading: %s", key, exc)
                continue
            if resolved.version != loaded.version:
                log.info("%s moved to v%s while v%s loaded; swapping", key,
                         resolved.version, loaded.version)
                await self.on_alias_event(AliasEvent(target.model, target.alias,
                                                     resolved.version))

    def install_failed(self, deployment: Deployment, error: BaseException,
                       attempts: int = 0) -> DeploymentRuntime:
        """Install ``deployment`` as not ready after a failed load, with a retry plan:
        LOADING and retried with backoff when a dependency did not answer, FAILED (and
        retried on alias events and registry reconnects) when the cause is permanent."""
        routes = deployment.effective_routes()
        attempts += 1
        detail = (error.message if isinstance(error, ModelplaneError)
                  else f"{type(error).__name__}: {error}")
        exhausted = False
        if is_transient(error) and attempts < self._load_budget:
            step = self._load_backoff.step(attempts)
            delay = self._rng.uniform(step / 2, step)
            state = DeploymentState.LOADING
            message = (f"waiting for {_dependency(error)} to answer: {detail} "
                       f"(attempt {attempts} of {self._load_budget} failed; next in "
                       f"{delay:.1f}s, or as soon as the registry event stream reconnects)")
            retry_at = time.monotonic() + delay
        elif is_transient(error):
            exhausted = True
            every = self._exhausted_retry_seconds
            delay = self._rng.uniform(every / 2, every)
            state = DeploymentState.FAILED
            message = (f"retry budget spent: {attempts} attempts failed; last error: "
                       f"waiting for {_dependency(error)} to answer: {detail} (retried in "
                       f"{delay:.0f}s, and at once when the registry event stream reconnects, "
                       f"an alias the deployment follows moves or the deployment is changed)")
            retry_at = time.monotonic() + delay
        else:
            state = DeploymentState.FAILED
            message = (f"{detail} (a permanent error: retried when an alias the deployment "
                       f"follows changes, the registry reconnects or the deployment is "
                       f"updated)")
            retry_at = 0.0
        rt = DeploymentRuntime(
            deployment, TrafficRouter(deployment.name, routes), routes, {}, {},
            state=state, state_message=message,
            targets={t.key: t for t in deployment.all_targets()},
            attempts=attempts, retry_at=retry_at, budget_exhausted=exhausted)
        self._runtimes[deployment.name] = rt
        self._observe(rt)
        self._retry_wake.set()
        return rt

    def remove(self, name: str) -> None:
        rt = self._runtimes.pop(name, None)
        if rt is not None:
            self._retire(list(rt.models.values()))
            self.metrics.forget_deployment(name)

    def discard_models(self, models: list[ServableModel]) -> None:
        """Close models that were loaded for a change that was not installed."""
        self._retire(models)

    def _retire(self, models: list[ServableModel]) -> None:
        if not models:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            for m in models:
                m.close()
            return
        # In-flight requests may still hold them: close a while later.
        loop.call_later(self._retire_seconds, _close_all, models)

    # --- alias events -------------------------------------------------------------------
    def watched_aliases(self) -> set[tuple[str, str]]:
        return {(t.model, t.alias) for rt in self._runtimes.values()
                for t in rt.targets.values() if t.alias}

    def start(self) -> None:
        self.logger.start()
        if self._watch_task is None:
            self._watch_task = asyncio.create_task(self._watch(), name="alias-watch")
        if self._retry_task is None:
            self._retry_task = asyncio.create_task(self._retry_loop(), name="deployment-retry")

    # --- not ready deployments: load again ------------------------------------------------
    def retry_now(self, names: set[str] | None = None) -> None:
        """Retry loading the not-ready deployments (``names``, or all) at once: an event
        says the cause may be gone, so one whose retry budget was spent gets a new one."""
        now = time.monotonic()
        for name, rt in self._runtimes.items():
            if rt.state is not DeploymentState.READY and (names is None or name in names):
                rt.retry_at = now
                if rt.budget_exhausted:
                    rt.attempts = 0
        self._retry_wake.set()

    async def _retry_loop(self) -> None:
        while True:
            self._retry_wake.clear()
            now = time.monotonic()
            for rt in [rt for rt in self._runtimes.values()
                       if rt.state is not DeploymentState.READY and 0 < rt.retry_at <= now]:
                try:
                    await self._retry(rt)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the loop must outlive any one deployment
                    log.exception("retrying deployment %s failed", rt.deployment.name)
            due = [rt.retry_at for rt in self._runtimes.values()
                   if rt.state is not DeploymentState.READY and rt.retry_at > 0]
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry_wake.wait(), timeout)

    async def _retry(self, rt: DeploymentRuntime) -> None:
        d = rt.deployment
        rt.retry_at = 0.0  # not picked again while this attempt runs
        try:
            new = await self.build(d)
        except Exception as exc:  # noqa: BLE001 - recorded as the deployment's state
            if self._runtimes.get(d.name) is rt:  # not changed or deleted meanwhile
                failed = self.install_failed(d, exc, rt.attempts)
                level = (logging.WARNING if failed.state is not rt.state
                         or failed.attempts in (2, 5) or failed.attempts % 20 == 0
                         else logging.DEBUG)
                log.log(level, "deployment %s is still not ready: %s", d.name,
                        failed.state_message)
            return
        if self._runtimes.get(d.name) is not rt:
            # Updated or deleted while loading: what was installed meanwhile wins.
            self._retire(list(new.models.values()))
            return
        self.install(new)
        log.info("deployment %s is ready (loaded after %d failed attempt(s))", d.name,
                 rt.attempts)

    async def resync(self) -> None:
        """Resolve every alias a ready deployment follows now (events may have been missed
        while disconnected); not-ready ones are retried when the event stream connects."""
        ready = {(t.model, t.alias) for rt in self._runtimes.values()
                 if rt.state is DeploymentState.READY for t in rt.targets.values() if t.alias}
        for model, alias in sorted(ready):
            try:
                resolved = await self.source.resolve(ModelTarget(model=model, alias=alias))
            except ModelplaneError as exc:
                log.warning("could not resolve %s@%s: %s", model, alias, exc.message)
                continue
            await self.on_alias_event(AliasEvent(model, alias, resolved.version))

    def readiness(self) -> dict[str, Any]:
        """What ``/v2/health/ready`` reports beyond ``ready``: the generation and state each
        deployment is served at here, and the retry state of what it depends on."""
        body: dict[str, Any] = {
            "deployments": {
                name: {"generation": rt.deployment.generation, "state": rt.state.value,
                       "load_failures": rt.attempts,
                       "retry_budget_exhausted": rt.budget_exhausted}
                for name, rt in sorted(self._runtimes.items())},
            "registry_stream": self.registry_stream}
        if self.change_feed_state is not None:
            body["deployment_sync"] = self.change_feed_state()
        return body

    @property
    def registry_stream(self) -> dict[str, Any]:
        """The alias event stream's state, for readiness."""
        wait = 0.0 if self._stream_connected_now else \
            max(0.0, self._stream_next_attempt - time.monotonic())
        return {"connected": self._stream_connected_now,
                "consecutive_failures": self._stream_backoff.failures,
                "last_error": self._stream_last_error,
                "next_attempt_in_seconds": round(wait, 3)}

    def _stream_connected(self) -> None:
        # The registry answers again: what waited for it (or missed events) loads now.
        self._stream_backoff.reset()
        self._stream_connected_now = True
        self._stream_last_error = ""
        self.metrics.registry_stream_connected.set(1)
        self.metrics.registry_stream_failures.set(0)
        waiting = [n for n, rt in self._runtimes.items() if rt.state is not DeploymentState.READY]
        if waiting:
            log.info("registry event stream connected: loading %s again now",
                     ", ".join(sorted(waiting)))
            self.retry_now()

    async def _watch(self) -> None:
        while True:
            try:
                await self.resync()
                async for event in self.source.alias_events(self.watched_aliases,
                                                            self._stream_connected):
                    await self.on_alias_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect after a pause
                delay = self._stream_backoff.failed()
                failures = self._stream_backoff.failures
                self._stream_connected_now = False
                self._stream_last_error = str(exc)
                self._stream_next_attempt = time.monotonic() + delay
                self.metrics.registry_stream_connected.set(0)
                self.metrics.registry_stream_failures.set(failures)
                # Once per outage (and now and then), not on every attempt.
                log.log(logging.WARNING if failures in (1, 5) or failures % 50 == 0
                        else logging.DEBUG,
                        "alias event stream failed (%s); reconnecting in %.1fs (failure %d)",
                        exc, delay, failures)
                await asyncio.sleep(delay)
                continue
            await asyncio.sleep(self._stream_backoff.failed())  # ended without an error

    async def on_alias_event(self, event: AliasEvent) -> None:
        """Swap every deployment that follows ``model@alias`` to its new version."""
        key = f"{event.model}@{event.alias}"
        if not event.version:
            log.warning("alias %s was removed; deployments keep serving the loaded version", key)
            return
        waiting = {name for name, rt in self._runtimes.items()
                   if rt.state is not DeploymentState.READY and key in rt.targets}
        if waiting:
            self.retry_now(waiting)
        new_model: ServableModel | None = None
        for rt in list(self._runtimes.values()):
            if rt.state is not DeploymentState.READY:
                continue
            current = rt.models.get(key)
            if key not in rt.targets or (current is not None
                                         and current.version == event.version):
                continue
            try:
                if new_model is None:
                    resolved = await self.source.resolve(rt.targets[key])
                    if self.require_validation and resolved.validation_status != "PASS":
                        # the gate holds after the deployment was made, too: an alias
                        # moved onto a version without a PASS is not followed
                        log.error("alias %s moved to v%s, which has no PASS validation (%s); "
                                  "deployments keep serving the loaded version "
                                  "(serving setting require_validation)", key,
                                  resolved.version, resolved.validation_status or "none")
                        return
                    new_model = await asyncio.to_thread(self.repository.load, resolved)
                    if new_model.version != event.version:
                        log.info("%s resolved to v%s (event said v%s)", key,
                                 new_model.version, event.version)
            except ModelplaneError as exc:
                log.error("could not load %s v%s: %s; keeping the loaded version",
                          key, event.version, exc.message)
                return
            rt.models[key] = new_model  # one dict store: requests see old or new, never none
            if current is not None:
                self._retire([current])
            log.info("deployment %s: %s now serves v%s", rt.deployment.name, key,
                     new_model.version)

    # --- access -------------------------------------------------------------------------
    def check_infer(self, rt: DeploymentRuntime, principal: Principal,
                    target: ModelTarget | None = None) -> None:
        """May ``principal`` call this deployment, and (batch jobs, Bento exports) score
        with ``target``? A deployment's infer right covers the models it serves (its
        routes, shadow, fallbacks, ensemble members), in any version; naming any other
        model through it needs an admin key, as no deployment's right is checked for it."""
        acc = rt.deployment.access
        if not may(principal, acc.infer_principals, acc.infer_access):
            raise PermissionDenied(
                f"key {principal.name!r} may not call model {rt.deployment.name!r}",
                reason="DEPLOYMENT_ACCESS_DENIED",
                metadata={"deployment": rt.deployment.name, "principal": principal.name})
        if target is None or not target.model or principal.role >= Role.ADMIN:
            return
        served = {t.model for t in rt.deployment.all_targets()} | {rt.deployment.model}
        if target.model not in served:
            raise PermissionDenied(
                f"target.model: deployment {rt.deployment.name!r} does not serve model "
                f"{target.model!r}; its rights cover only its own models",
                reason="TARGET_MODEL_NOT_SERVED",
                metadata={"deployment": rt.deployment.name, "model": target.model,
                          "principal": principal.name},
                field_violations=[FieldViolation("target.model", "not served by the deployment")])

    # --- inference ----------------------------------------------------------------------
    async def infer(self, req: InferenceRequest, principal: Principal) -> InferenceResponse:
        started = time.perf_counter()
        rt = self.runtime(req.model_name)
        self.check_infer(rt, principal)
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
        for task in (self._watch_task, self._retry_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._watch_task = self._retry_task = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        await self.logger.close()
        for rt in self._runtimes.values():
            for m in rt.models.values():
                m.close()
        self._runtimes.clear()
        await self.source.close()
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


def _dependency(exc: BaseException) -> str:
    """What a transient load failure waits for, in the words of a readiness reason."""
    reason = getattr(exc, "reason", "")
    if reason == "MODEL_ARTIFACT_UNREACHABLE" or not isinstance(exc, ModelplaneError):
        return "the registry's artifact store (MLflow)"
    return "the registry"


def _close_all(models: list[ServableModel]) -> None:
    for m in models:
        m.close()


def _trace_context() -> tuple[str, str]:
    """(trace id, span id) of the span serving this request; the span id only when that
    span is recording (sampled), so observability can join the prediction to it."""
    span = _get_current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return "", ""
    return (format(ctx.trace_id, "032x"),
            format(ctx.span_id, "016x") if span.is_recording() else "")
