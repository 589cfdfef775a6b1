"""The rollout controller: one replica at a time moves rollouts forward, by the numbers.

:class:`Rollouts` is what the ServingService's rollout RPCs call (create, get,
list, pause, resume, abort, events, watch) and what the controller ticks.

**State lives in the store, every transition is one transaction.** A rollout
row has a revision; a transition writes the new row only if the revision is
still the one it read (compare-and-set), together with its audited event and -
when the transition moves traffic - the deployment's new traffic split, all in
the transaction that stores the deployment (``DeploymentStore.replace(also=)``).
A process killed at any instruction has either made the whole transition or
none of it; the replica that carries on reads the row and continues at the
recorded step (its clock and sample count included).

**One controller acts.** The replica holding the ``rollout-controller`` lease
(a row with an expiry in the database's clock, taken when free or expired,
renewed every quarter of ``lease_seconds``) ticks; the others wait to take it
over. A holder that cannot renew stops ticking before its lease could have
passed to another. Should two still both tick (a paused process waking up late),
the compare-and-set lets only one of them make each transition: the other's
transaction is rolled back, traffic change included.

**What happens on each decision** (see ``rollout.decide`` for the rule):

* WAIT - the rollout's ``state_message`` says what for; an event is recorded
  when the kind of wait changes (duration, requests, samples, actuals, evidence);
* ADVANCE - the challenger gets the next step's weight;
* ROLL_BACK - the challenger's weight goes to 0; aliases are not touched;
* PROMOTE - state PROMOTING is recorded, then the registry is asked to move the
  champion alias to the challenger's version (``AliasMover``), through its gate.
  Done: PROMOTED, all traffic to the champion alias (which now is the
  challenger). Refused (no PASS validation, no right...): FAILED with the
  registry's words, challenger weight 0 - never retried. Registry unreachable:
  stays PROMOTING and asks again next tick (moving an alias to the version it
  already points at is harmless, so a promotion cut by a kill is simply redone).

**What each look reads**: the quality and slice counts and, for a proxy check,
both versions' records (drift, CBPE) from the :class:`EvidenceSource`; for an
operations check, both versions' request outcomes since the rollout started
from serving's own store (``DeploymentStore.route_stats``, every replica's).

No grpc here: evidence and the registry come in as :class:`EvidenceSource` and
:class:`AliasMover` (``adapters.rollout_adapters`` has the gRPC ones).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from modelplane.kit import paging
from modelplane.kit.auth import current_principal
from modelplane.kit.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ModelplaneError,
    NotFound,
    Unavailable,
)
from modelplane.kit.lease import Lease
from modelplane.serving.deployment import ModelTarget, Route
from modelplane.serving.deployment_service import DeploymentService
from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.rollout import (
    DEFAULT_CHAMPION_ALIAS,
    Action,
    Counts,
    EventType,
    Evidence,
    ProxyStats,
    Rollout,
    RolloutEvent,
    RolloutState,
    RouteStats,
    SliceCounts,
    decide,
    validate,
)
from modelplane.serving.route_stats import BUCKET_SECONDS, route_stats_from_counts

log = logging.getLogger("modelplane.serving.rollouts")
audit = logging.getLogger("modelplane.serving.audit")

LEASE_NAME = "rollout-controller"
#: how often a WatchRolloutEvents stream reads the store (events of any replica)
WATCH_POLL_SECONDS = 0.5


class EvidenceSource(Protocol):
    async def counts(self, model: str, version: str, start: datetime,
                     end: datetime, metric: str = "ACCURACY", positive_class: str = ""
                     ) -> Counts:
        """Predictions of ``model`` ``version`` in [start, end) with an actual, and
        how many were right (``metric`` "MAE": their MAE and RMSE; "PRECISION" /
        "RECALL": only those that predicted / whose actual is ``positive_class``).
        Raises Unavailable when it cannot tell."""
        ...

    async def slice_counts(self, model: str, version: str, start: datetime, end: datetime,
                           feature: str, metric: str = "ACCURACY", positive_class: str = ""
                           ) -> dict[str, Counts]:
        """The same counts per value of the categorical ``feature``."""
        ...

    async def proxy_stats(self, model: str, champion: str, challenger: str, start: datetime,
                          end: datetime, estimated: bool) -> ProxyStats:
        """Both versions' records in [start, end), with or without an actual: their
        counts, the drift of the challenger's predictions from the champion's and,
        when ``estimated``, the accuracy estimated from scores (only asked when the
        analysis has a proxy check)."""
        ...


class AlertRaiser(Protocol):
    async def raise_alert(self, source: str, model: str, version: str, message: str,
                          idempotency_key: str) -> None:
        """Raise a FIRING alert in observability, once per ``idempotency_key``; raises
        Unavailable (or another ModelplaneError) when it could not."""
        ...


class AliasMover(Protocol):
    async def set_alias(self, model: str, alias: str, version: str) -> None:
        """Move ``alias`` to ``version`` through the registry's gate; raises the
        registry's error (FailedPrecondition when the gate refuses)."""
        ...


def rollout_routes(r: Rollout) -> tuple[Route, ...]:
    """The traffic split a rollout in its current state means."""
    champion = ModelTarget(alias=r.champion_alias)
    if r.state is RolloutState.PROMOTED:
        return (Route(champion, 100.0),)
    w = r.challenger_weight()
    return (Route(champion, 100.0 - w), Route(ModelTarget(version=r.challenger_version), w))


class RolloutLease(Lease):
    """The controller's lease (see the module docstring): the kit's :class:`Lease`
    on serving's own store."""

    def __init__(self, store: DeploymentStore, ttl_seconds: float,
                 holder: str | None = None) -> None:
        super().__init__(store, LEASE_NAME, ttl_seconds, holder)


def _now() -> datetime:
    return datetime.now(UTC)


def _name(position: object) -> str:
    """The position in a rollouts page token: the last rollout name returned."""
    if not isinstance(position, str):
        raise TypeError(position)
    return position


def _sequence(position: object) -> int:
    """The position in a rollout events page token: the last sequence returned."""
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise TypeError(position)
    return position


class Rollouts:
    """Rollout operations and the controller's tick."""

    def __init__(self, store: DeploymentStore, deployments: DeploymentService, *,
                 evidence: EvidenceSource | None, aliases: AliasMover | None,
                 holder: str = "", clock: Callable[[], datetime] = _now,
                 alerts: AlertRaiser | None = None) -> None:
        self.alerts = alerts
        self.store = store
        self.deployments = deployments
        self.evidence = evidence
        self.aliases = aliases
        self.actor = f"controller:{holder or os.getpid()}"
        self._clock = clock

    # --- transitions --------------------------------------------------------------------
    async def _transition(self, old: Rollout, event: EventType | None, message: str, *,
                          actor: str, traffic: bool, evidence: Evidence | None = None,
                          override_reason: str = "", state_message_keep: bool = False,
                          **changes: Any) -> Rollout:
        """Write ``old`` + ``changes`` as the next revision (compare-and-set), with its
        event, and with the traffic split it means when ``traffic``: one transaction."""
        now = self._clock()
        new = dataclasses.replace(old, **changes, revision=old.revision + 1, update_time=now,
                                  state_message=old.state_message if state_message_keep
                                  else message,
                                  evidence=evidence if evidence is not None else old.evidence)
        ev = None if event is None else RolloutEvent(
            new.name, new.revision, now, event, new.state, new.current_step,
            new.challenger_weight(), message, actor, evidence)

        def write(cur: Any) -> None:
            if old.revision == 0:
                active = self.store.active_rollouts(cur, new.deployment)
                if active:
                    raise FailedPrecondition(
                        f"deployment {new.deployment!r} already has an active rollout "
                        f"({active[0]}); abort it first", reason="ROLLOUT_ACTIVE",
                        metadata={"deployment": new.deployment, "rollout": active[0]})
            self.store.write_rollout(cur, new, old.revision, ev)

        if traffic:
            await self.deployments.set_traffic_split(new.deployment, rollout_routes(new),
                                                     override_reason=override_reason,
                                                     also=write)
        else:  # never a creation: that always sets the first step's traffic
            await asyncio.to_thread(self.store.save_rollout, new, old.revision, ev)
        if ev is not None:
            audit.info("rollout %s: %s (step %d, challenger weight %g) by %s: %s", new.name,
                       ev.type.value, ev.step, ev.weight, actor, message,
                       extra={"rollout": new.name, "rollout_event": ev.type.value,
                              "principal": actor})
        return new

    # --- operations ---------------------------------------------------------------------
    async def create(self, r: Rollout, override_reason: str = "") -> Rollout:
        validate(r)
        d = await self.deployments._get(r.deployment)
        model = r.challenger.model or d.model
        if model != d.model:
            raise InvalidArgument(
                f"the challenger's model {model!r} is not deployment {d.name!r}'s ({d.model!r})",
                reason="INVALID_ROLLOUT", metadata={"rollout": r.name},
                field_violations=[FieldViolation("rollout.challenger.model",
                                                 f"must be {d.model!r} or empty")])
        if await asyncio.to_thread(self.store.get_rollout, r.name) is not None:
            from modelplane.kit.errors import AlreadyExists

            raise AlreadyExists(f"rollout {r.name!r} already exists", reason="ROLLOUT_EXISTS",
                                metadata={"rollout": r.name})
        champion_alias = r.champion_alias or DEFAULT_CHAMPION_ALIAS
        source = self.deployments.models.source
        challenger = await source.resolve(r.challenger.resolved_in(model))
        champion = await source.resolve(ModelTarget(model=model, alias=champion_alias))
        if challenger.version == champion.version:
            raise FailedPrecondition(
                f"the challenger {r.challenger.resolved_in(model).uri} is version "
                f"{challenger.version}, which @{champion_alias} already points at",
                reason="CHALLENGER_IS_CHAMPION",
                metadata={"rollout": r.name, "version": challenger.version})
        now = self._clock()
        principal = current_principal().name
        base = dataclasses.replace(
            r, model=model, champion_alias=champion_alias, state=RolloutState.RUNNING,
            current_step=0, step_start_time=now, step_start_labeled=0, start_time=now,
            challenger_version=challenger.version, champion_version=champion.version,
            create_time=now, revision=0)
        return await self._transition(
            base, EventType.CREATED,
            f"started by {principal}: v{challenger.version} against @{champion_alias} "
            f"(v{champion.version}) at {r.steps[0].weight:g}%",
            actor=principal, traffic=True, override_reason=override_reason)

    async def get(self, name: str) -> Rollout:
        r = await asyncio.to_thread(self.store.get_rollout, name)
        if r is None:
            raise NotFound(f"rollout {name!r} not found", reason="ROLLOUT_NOT_FOUND",
                           metadata={"rollout": name})
        return r

    async def list_rollouts(self, page_size: int, page_token: str, deployment: str = ""
                            ) -> tuple[list[Rollout], str]:
        limit = paging.page_size(page_size)
        query = {"kind": "rollouts", "deployment": deployment}
        after = paging.decode_page_token(page_token, query, shape=_name) or ""
        rows = await asyncio.to_thread(self.store.list_rollouts, after=after,
                                       limit=limit + 1, deployment=deployment)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, paging.encode_page_token(rows[-1].name if more else None, query)

    async def events(self, name: str, page_size: int, page_token: str
                     ) -> tuple[list[RolloutEvent], str]:
        await self.get(name)
        limit = paging.page_size(page_size)
        query = {"kind": "rollout-events", "rollout": name}
        after = paging.decode_page_token(page_token, query, shape=_sequence) or 0
        rows = await asyncio.to_thread(self.store.rollout_events, name, after=after,
                                       limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, paging.encode_page_token(rows[-1].sequence if more else None, query)

    async def watch(self, name: str, after: int = 0) -> AsyncIterator[RolloutEvent]:
        """Events after ``after`` as any replica records them; ends after the event
        that finishes the rollout."""
        await self.get(name)
        while True:
            for ev in await asyncio.to_thread(self.store.rollout_events, name, after=after):
                after = ev.sequence
                yield ev
                if not ev.state.active:
                    return
            await asyncio.sleep(WATCH_POLL_SECONDS)

    async def _by_hand(self, name: str, allowed: tuple[RolloutState, ...], verb: str,
                       apply: Callable[[Rollout, str], Any]) -> Rollout:
        for _ in range(5):  # the controller may write in between: read again and retry
            r = await self.get(name)
            # the deployment's manage rights, as for any change of its traffic
            d = await asyncio.to_thread(self.store.get, r.deployment)
            if d is not None:
                self.deployments._check_manage(d, current_principal())
            if r.state not in allowed:
                raise FailedPrecondition(
                    f"rollout {name!r} is {r.state.value}; only a "
                    f"{' or '.join(s.value for s in allowed)} rollout can be {verb}",
                    reason="ROLLOUT_STATE", metadata={"rollout": name, "state": r.state.value})
            try:
                new: Rollout = await apply(r, current_principal().name)
                return new
            except Aborted:
                continue
        raise Aborted(f"rollout {name!r} kept changing; try again", reason="ROLLOUT_CHANGED",
                      metadata={"rollout": name})

    async def pause(self, name: str, reason: str = "") -> Rollout:
        return await self._by_hand(
            name, (RolloutState.RUNNING,), "paused",
            lambda r, who: self._transition(
                r, EventType.PAUSED, f"paused by {who}" + (f": {reason}" if reason else ""),
                actor=who, traffic=False, state=RolloutState.PAUSED))

    async def resume(self, name: str, reason: str = "") -> Rollout:
        return await self._by_hand(
            name, (RolloutState.PAUSED,), "resumed",
            lambda r, who: self._transition(
                r, EventType.RESUMED, f"resumed by {who}" + (f": {reason}" if reason else ""),
                actor=who, traffic=False, state=RolloutState.RUNNING, wait_kind=""))

    async def abort(self, name: str, reason: str = "") -> Rollout:
        # Not while PROMOTING: the registry may be moving the alias right now.
        return await self._by_hand(
            name, (RolloutState.RUNNING, RolloutState.PAUSED), "aborted",
            lambda r, who: self._transition(
                r, EventType.ABORTED, f"aborted by {who}" + (f": {reason}" if reason else ""),
                actor=who, traffic=True, state=RolloutState.ABORTED))

    # --- the controller -----------------------------------------------------------------
    async def run(self, lease: RolloutLease, tick_seconds: float) -> None:
        """Tick while this replica holds ``lease`` (cancel to stop)."""
        while True:
            if lease.held():
                try:
                    await self.tick(lease.held)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("rollout controller tick failed")
            await asyncio.sleep(tick_seconds)

    async def tick(self, still_leading: Callable[[], bool] = lambda: True) -> None:
        """One look at every RUNNING or PROMOTING rollout."""
        rollouts = await asyncio.to_thread(
            self.store.list_rollouts, states=(RolloutState.RUNNING, RolloutState.PROMOTING,
                                              RolloutState.ROLLED_BACK))
        for r in rollouts:
            if not still_leading():
                return
            try:
                if r.state is RolloutState.ROLLED_BACK:
                    if r.alert_key:
                        await self._raise_alert(r)
                elif r.state is RolloutState.PROMOTING:
                    await self._promote(r)
                else:
                    await self._look(r)
            except Aborted:
                log.info("rollout %s changed while this controller looked; next tick", r.name)
            except NotFound as exc:  # the deployment is gone
                # It may go between _look's check and a later step of the look (which then
                # says "not found"): say what happened, whichever step noticed.
                gone = await asyncio.to_thread(self.store.get, r.deployment) is None
                message = (f"deployment {r.deployment!r} was deleted" if gone
                           else exc.message)
                await self._transition(r, EventType.FAILED, f"cannot continue: {message}",
                                       actor=self.actor, traffic=False,
                                       state=RolloutState.FAILED)
            except Exception:
                log.exception("rollout %s: the controller's look failed", r.name)

    async def _counts(self, r: Rollout, now: datetime
                      ) -> tuple[Counts, Counts, SliceCounts, str]:
        if self.evidence is None:
            return Counts(), Counts(), {}, " (no observability peer is configured)"
        source = self.evidence
        start = r.start_time or now
        try:
            metric, positive = r.analysis.metric, r.analysis.positive_class
            champion, challenger = await asyncio.gather(
                source.counts(r.model, r.champion_version, start, now, metric, positive),
                source.counts(r.model, r.challenger_version, start, now, metric, positive))
            slices: SliceCounts = {}
            for c in r.analysis.slices:  # one call per side and slice check
                zero = Counts()
                old, new = await asyncio.gather(
                    source.slice_counts(r.model, r.champion_version, start, now, c.feature,
                                        metric, positive),
                    source.slice_counts(r.model, r.challenger_version, start, now, c.feature,
                                        metric, positive))
                slices[c.feature] = {v: (old.get(v, zero), new.get(v, zero))
                                     for v in sorted(set(old) | set(new))}
        except ModelplaneError as exc:  # said in the state message; the rule waits
            return Counts(), Counts(), {}, f" (observability: {exc.message} [{exc.reason}])"
        return champion, challenger, slices, ""

    async def _proxy(self, r: Rollout, now: datetime) -> tuple[ProxyStats | None, str]:
        if r.analysis.proxy is None:
            return None, ""
        if self.evidence is None:
            return ProxyStats(), ""  # _counts says so already
        try:
            stats = await self.evidence.proxy_stats(
                r.model, r.champion_version, r.challenger_version, r.start_time or now, now,
                r.analysis.proxy.estimated_accuracy)
        except ModelplaneError as exc:  # said in the state message; the proxies wait
            return ProxyStats(), f" (observability's proxies: {exc.message} [{exc.reason}])"
        return stats, ""

    async def _operations(self, r: Rollout, now: datetime
                          ) -> tuple[RouteStats, RouteStats] | None:
        """Both versions' request outcomes since the rollout started, every replica's
        (the shared store; each replica adds its own every few seconds)."""
        if r.analysis.operations is None:
            return None
        start = (r.start_time or now).timestamp()
        old, new = await asyncio.gather(*(
            asyncio.to_thread(self.store.route_stats, r.deployment, version, start,
                              now.timestamp(), BUCKET_SECONDS)
            for version in (r.champion_version, r.challenger_version)))
        return route_stats_from_counts(old), route_stats_from_counts(new)

    async def _look(self, r: Rollout) -> None:
        if await asyncio.to_thread(self.store.get, r.deployment) is None:
            raise NotFound(f"deployment {r.deployment!r} was deleted",
                           reason="DEPLOYMENT_NOT_FOUND", metadata={"deployment": r.deployment})
        now = self._clock()
        champion, challenger, slices, note = await self._counts(r, now)
        proxy, proxy_note = await self._proxy(r, now)
        note += proxy_note
        operations = await self._operations(r, now)
        d = decide(r, champion, challenger, now, slices, proxy, operations)
        actor = self.actor
        if d.action is Action.WAIT:
            kind = d.kind + ("!" if note else "")
            await self._transition(r, EventType.WAITING if kind != r.wait_kind else None,
                                   d.reason + note, actor=actor, traffic=False,
                                   evidence=d.evidence, wait_kind=kind)
        elif d.action is Action.ADVANCE:
            await self._transition(r, EventType.STEP_STARTED, d.reason, actor=actor,
                                   traffic=True, evidence=d.evidence,
                                   current_step=r.current_step + 1, step_start_time=now,
                                   step_start_labeled=challenger.labeled,
                                   step_start_records=proxy.challenger_records if proxy
                                   else 0, wait_kind="")
        elif d.action is Action.ROLL_BACK:
            new = await self._transition(r, EventType.ROLLED_BACK, "rolled back: " + d.reason,
                                         actor=actor, traffic=True, evidence=d.evidence,
                                         state=RolloutState.ROLLED_BACK,
                                         alert_key=f"{r.name}@{r.revision + 1}"
                                         if self.alerts is not None else "")
            log.warning("rollout %s rolled back: %s", new.name, d.reason)
            await self._raise_alert(new)
        else:
            new = await self._transition(r, EventType.PROMOTING, "promoting: " + d.reason,
                                         actor=actor, traffic=False, evidence=d.evidence,
                                         state=RolloutState.PROMOTING)
            await self._promote(new)

    async def _raise_alert(self, r: Rollout) -> None:
        """The roll back's alert in observability; the roll back is done already. Not
        reached: an ALERT event says so (once) and the next tick asks again (the
        idempotency key, recorded with the roll back, makes a repeat raise nothing)."""
        if self.alerts is None or not r.alert_key:
            return
        message = (f"rollout {r.name} rolled back v{r.challenger_version} of {r.model} on "
                   f"deployment {r.deployment}: " + r.state_message.removeprefix("rolled back: "))
        try:
            await self.alerts.raise_alert(f"rollout/{r.name}", r.model, r.challenger_version,
                                          message, r.alert_key)
        except ModelplaneError as exc:
            note = (f"rolled back; the alert could not be raised in observability yet "
                    f"({exc.message} [{exc.reason}]); trying again next tick")
            # the last transition's event, if it had one (an event's sequence is the
            # revision it made): the same failure is recorded once, not every tick
            last = await asyncio.to_thread(self.store.rollout_events, r.name,
                                           after=max(r.revision - 1, 0))
            if not last or last[-1].message != note:
                await self._transition(r, EventType.ALERT, note, actor=self.actor,
                                       traffic=False, state_message_keep=True)
            return
        await self._transition(r, EventType.ALERT, "alert raised in observability "
                               f"(source rollout/{r.name})", actor=self.actor, traffic=False,
                               state_message_keep=True, alert_key="")

    async def _promote(self, r: Rollout) -> None:
        what = f"@{r.champion_alias} of {r.model} to v{r.challenger_version}"
        if self.aliases is None:
            await self._transition(r, EventType.FAILED,
                                   f"cannot promote: no registry to move {what} through "
                                   "(serving reads models straight from MLflow)",
                                   actor=self.actor, traffic=True, state=RolloutState.FAILED)
            return
        try:
            await self.aliases.set_alias(r.model, r.champion_alias, r.challenger_version)
        except (Unavailable, DeadlineExceeded) as exc:
            message = f"promoting: the registry did not answer ({exc.message}); asking again"
            if message != r.state_message:
                await self._transition(r, None, message, actor=self.actor, traffic=False)
            return
        except ModelplaneError as exc:
            await self._transition(r, EventType.FAILED,
                                   f"the registry refused to move {what}: {exc.message} "
                                   f"[{exc.reason}]; the challenger gets no traffic",
                                   actor=self.actor, traffic=True, state=RolloutState.FAILED)
            return
        await self._transition(r, EventType.PROMOTED, f"promoted: {what} moved",
                               actor=self.actor, traffic=True, state=RolloutState.PROMOTED)
