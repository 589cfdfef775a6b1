"""Deployments loaded in memory: each one's models, router and breakers, from load to
retirement (the model lifecycle).

A deployment's targets are resolved through the model source and loaded into BentoML's
store (:meth:`LoadedModels.build`), then installed in one dictionary store; the models
they replace are retired a while later, so in-flight requests finish on them. A load
that fails because a dependency did not answer is retried with backoff (then slowly,
once the retry budget is spent); alias events swap a moved alias's new version in next
to the old one. The request path (:mod:`.predictor`) reads what is installed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelplane.kit.backoff import Backoff
from modelplane.kit.errors import ModelplaneError, NotFound
from modelplane.serving.bento_models import BentoModelRepository
from modelplane.serving.circuit_breaker import CircuitBreaker
from modelplane.serving.deployment import (
    Deployment,
    DeploymentState,
    LoadedModelInfo,
    ModelTarget,
    Route,
)
from modelplane.serving.model_source import AliasEvent, ModelSource, is_transient
from modelplane.serving.servable_model import ServableModel
from modelplane.serving.serving_metrics import ServingMetrics
from modelplane.serving.traffic_router import TrafficRouter

# the logger's name from before the data plane was split (what log filters select)
log = logging.getLogger("modelplane.serving.data_plane")

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


class LoadedModels:
    """The deployments served here by name, each a :class:`DeploymentRuntime`: loaded,
    swapped on alias events, retried while not ready, retired."""

    def __init__(self, source: ModelSource, repository: BentoModelRepository,
                 metrics: ServingMetrics, *, retire_seconds: float = 30.0,
                 load_retry_budget: int = LOAD_RETRY_BUDGET,
                 retry_initial_seconds: float = RETRY_INITIAL_SECONDS,
                 retry_max_seconds: float = RETRY_MAX_SECONDS,
                 exhausted_retry_seconds: float = EXHAUSTED_RETRY_SECONDS,
                 rng: random.Random | None = None) -> None:
        self.source = source
        self.repository = repository
        #: follow an alias only onto a version with a PASS validation (set by the server
        #: from its ``require_validation`` setting; off for bare loaded models)
        self.require_validation = False
        self.metrics = metrics
        self._runtimes: dict[str, DeploymentRuntime] = {}
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

    async def close(self) -> None:
        for task in (self._watch_task, self._retry_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._watch_task = self._retry_task = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        for rt in self._runtimes.values():
            for m in rt.models.values():
                m.close()
        self._runtimes.clear()
        await self.source.close()


def _dependency(exc: BaseException) -> str:
    """What a transient load failure waits for, in the words of a readiness reason."""
    reason = getattr(exc, "reason", "")
    if reason == "MODEL_ARTIFACT_UNREACHABLE" or not isinstance(exc, ModelplaneError):
        return "the registry's artifact store (MLflow)"
    return "the registry"


def _close_all(models: list[ServableModel]) -> None:
    for m in models:
        m.close()

