"""The control plane: create, change and delete deployments, persisted and applied live.

With ``require_validation`` on (the default), a change that routes traffic to a
version without a PASS validation in the registry - pinned, or through an alias
it resolves to, in the traffic split or an ensemble - is FAILED_PRECONDITION,
unless an admin gives an override reason; the override is written to the
``modelplane.serving.audit`` log with the caller, the versions and the reason.

Every change is validated, its models resolved and loaded *before* it is
persisted, then swapped into the data plane in one step, so a bad change is an
error to its caller and never a broken deployment. On start, persisted
deployments are loaded again (a restart keeps routing as it was).

Several replicas on one PostgreSQL store: each write takes a new generation and
is announced (``deployment_store``, ``deployment_sync``); every replica, the
writer included, then calls :meth:`DeploymentService.sync`, which reloads the row
and applies it (load, swap the routes, or unload) unless the replica already
serves that generation. The writer installs its own change before the
announcement can be handled (both hold the service's lock), so it sees its own
generation and does nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelplane.kit import paging
from modelplane.kit.auth import Principal, Role, current_principal
from modelplane.kit.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ModelplaneError,
    NotFound,
    PermissionDenied,
)
from modelplane.serving.deployment import (
    Deployment,
    DeploymentState,
    LoadedModelInfo,
    Route,
    validate,
    validate_traffic_split,
)
from modelplane.serving.deployment_access import may
from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.loaded_models import LoadedModels

log = logging.getLogger("modelplane.serving.deployment_service")
audit = logging.getLogger("modelplane.serving.audit")

UPDATABLE_FIELDS = ("description", "model", "traffic_split", "shadows", "fallback", "ensemble",
                    "features", "sticky_key", "access", "prediction_logging")
_FIELD_ATTR = {"traffic_split": "routes", "prediction_logging": "logging_enabled"}


@dataclasses.dataclass(frozen=True)
class DeploymentView:
    """A deployment with its live state (what Get/List return)."""

    deployment: Deployment
    state: DeploymentState
    state_message: str
    loaded_models: list[LoadedModelInfo]


def _deployment_name(position: object) -> str:
    """The position in a deployments page token: the last deployment name returned."""
    if not isinstance(position, str):
        raise TypeError(position)
    return position


class DeploymentService:
    def __init__(self, store: DeploymentStore, models: LoadedModels, *,
                 require_validation: bool = True) -> None:
        self.store = store
        self.models = models
        self.require_validation = require_validation
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Load every persisted deployment. A failure leaves it not ready, never the server
        down: LOADING and retried with backoff while the registry does not answer, FAILED
        (retried on alias events) for a permanent reason; see ``LoadedModels.install_failed``."""
        deployments = await asyncio.to_thread(self.store.list_deployments)
        for d in deployments:
            await self._load_stored(d)

    async def _load_stored(self, d: Deployment) -> None:
        """Apply a stored deployment here: build (reusing what is loaded, aliases checked
        again right after the swap) and swap it in, or install it not ready with a retry
        plan."""
        previous = self.models.find(d.name)
        try:
            self.models.install(await self.models.build(
                d, previous if previous is not None and previous.models else None,
                recheck_aliases=False))
        except ModelplaneError as exc:
            rt = self.models.install_failed(d, exc)
            log.error("deployment %s could not be loaded: %s", d.name, rt.state_message)
        except Exception as exc:
            log.exception("deployment %s could not be loaded", d.name)
            self.models.install_failed(d, exc)

    # --- replicas: apply what another replica (or this one) committed ------------------
    async def sync(self, name: str, generation: int | None = None) -> None:
        """Make this replica serve the stored row of ``name``: created, changed or
        deleted. ``generation`` (from a notification) short-cuts the read when this
        replica already serves that generation or a newer one."""
        async with self._lock:
            rt = self.models.find(name)
            if generation is not None and rt is not None \
                    and rt.deployment.generation >= generation:
                return
            d = await asyncio.to_thread(self.store.get, name)
            if d is None:
                if rt is not None:
                    self.models.remove(name)
                    log.info("deployment %s was deleted (generation %s); unloaded", name,
                             generation if generation is not None else "?")
                return
            if rt is not None and rt.deployment.generation >= d.generation:
                return
            log.info("deployment %s: applying generation %d (served: %s)", name, d.generation,
                     rt.deployment.generation if rt is not None else "none")
            await self._load_stored(d)

    async def resync(self) -> None:
        """Compare every stored generation with what this replica serves and apply the
        difference (after a reconnect of the change feed: notifications may be missed)."""
        stored = await asyncio.to_thread(self.store.generations)
        served = {n: rt.deployment.generation for n in self.models.names
                  if (rt := self.models.find(n)) is not None}
        for name in sorted(set(stored) | set(served)):
            if stored.get(name) != served.get(name):
                await self.sync(name)

    # --- helpers ------------------------------------------------------------------------
    def view(self, d: Deployment) -> DeploymentView:
        rt = self.models.find(d.name)
        if rt is None:
            return DeploymentView(d, DeploymentState.LOADING, "", [])
        if d.generation and rt.deployment.generation < d.generation:
            # Read from the store while this replica applies the change (at most a
            # moment: the change feed announces every write).
            return DeploymentView(
                d, DeploymentState.LOADING,
                f"this replica serves generation {rt.deployment.generation}; applying "
                f"generation {d.generation}", rt.loaded_models())
        return DeploymentView(d, rt.state, rt.state_message, rt.loaded_models())

    async def _get(self, name: str) -> Deployment:
        d = await asyncio.to_thread(self.store.get, name)
        if d is None:
            raise NotFound(f"deployment {name!r} not found", reason="DEPLOYMENT_NOT_FOUND",
                           metadata={"deployment": name})
        return d

    @staticmethod
    def _check_manage(d: Deployment, principal: Principal) -> None:
        acc = d.access
        if not may(principal, acc.manage_principals, acc.manage_access):
            raise PermissionDenied(
                f"key {principal.name!r} may not change deployment {d.name!r}",
                reason="DEPLOYMENT_ACCESS_DENIED",
                metadata={"deployment": d.name, "principal": principal.name})

    async def _check_validation(self, new: Deployment, current: Deployment | None,
                                override_reason: str) -> None:
        """Refuse routing traffic to a version without a PASS validation (see the module
        docstring). Targets the deployment already routed to are not asked again."""
        if not self.require_validation:
            return
        known = {t.key for t in current.answering_targets()} if current else set()
        unvalidated = []
        for target in new.answering_targets():
            if target.key in known:
                continue
            resolved = await self.models.source.resolve(target)
            if resolved.validation_status != "PASS":
                unvalidated.append(f"{target.uri} (v{resolved.version}: "
                                   f"{resolved.validation_status or 'no validation'})")
        if not unvalidated:
            return
        principal = current_principal()
        what = ", ".join(unvalidated)
        meta = {"deployment": new.name, "versions": what}
        if not override_reason.strip():
            raise FailedPrecondition(
                f"deployment {new.name!r} would route traffic to version(s) without a PASS "
                f"validation: {what}; validate them first, or an admin gives "
                "validation_override_reason (serving setting require_validation)",
                reason="VALIDATION_REQUIRED", metadata=meta)
        if principal.role < Role.ADMIN:
            raise PermissionDenied(
                f"serving unvalidated version(s) ({what}) needs an admin's override; key "
                f"{principal.name!r} has role {principal.role.name.lower()}",
                reason="OVERRIDE_NOT_ALLOWED", metadata=meta)
        audit.warning("validation override: deployment=%s principal=%s versions=%s reason=%s",
                      new.name, principal.name, what, override_reason.strip(),
                      extra={"deployment": new.name, "principal": principal.name,
                             "versions": what, "override_reason": override_reason.strip()})

    async def _apply(self, new: Deployment, *, expected_etag: str | None,
                     also: Callable[[Any], None] | None = None) -> Deployment:
        """Build, persist (which gives the generation), install; returns what was stored."""
        previous = self.models.find(new.name)
        rt = await self.models.build(new, previous if previous and previous.models else None)
        try:
            if expected_etag is None:
                stored = await asyncio.to_thread(self.store.create, new)
            else:
                stored = await asyncio.to_thread(self.store.replace, new,
                                                 expected_etag=expected_etag, also=also)
        except BaseException:
            # Another replica won the race (exists / etag changed): unload what this
            # attempt loaded, keep what the served version still uses.
            kept = {id(m) for m in previous.models.values()} if previous else set()
            self.models.discard_models([m for m in rt.models.values() if id(m) not in kept])
            raise
        rt.deployment = stored
        self.models.install(rt)
        return stored

    # --- operations ---------------------------------------------------------------------
    async def create(self, d: Deployment, override_reason: str = "") -> DeploymentView:
        validate(d)
        now = datetime.now(UTC)
        d = dataclasses.replace(d, create_time=now, update_time=now, etag=uuid.uuid4().hex)
        async with self._lock:
            if await asyncio.to_thread(self.store.get, d.name) is not None:
                from modelplane.kit.errors import AlreadyExists

                raise AlreadyExists(f"deployment {d.name!r} already exists",
                                    reason="DEPLOYMENT_EXISTS", metadata={"deployment": d.name})
            await self._check_validation(d, None, override_reason)
            d = await self._apply(d, expected_etag=None)
        return self.view(d)

    async def get(self, name: str) -> DeploymentView:
        d = await self._get(name)
        return self.view(d)

    async def list_deployments(self, page_size: int, page_token: str, model: str = ""
                   ) -> tuple[list[DeploymentView], str]:
        limit = paging.page_size(page_size)
        query = {"kind": "deployments", "model": model}
        after = paging.decode_page_token(page_token, query, shape=_deployment_name) or ""
        rows = await asyncio.to_thread(self.store.list_deployments, after=after, limit=limit + 1,
                                       model=model)
        more = len(rows) > limit
        rows = rows[:limit]
        return ([self.view(d) for d in rows],
                paging.encode_page_token(rows[-1].name if more else None, query))

    async def update(self, d: Deployment, paths: list[str],
                     override_reason: str = "", *,
                     also: Callable[[Any], None] | None = None) -> DeploymentView:
        """``also(cursor)`` runs in the transaction that stores the change (see
        ``DeploymentStore.replace``)."""
        unknown = [p for p in paths if p not in UPDATABLE_FIELDS]
        if unknown:
            raise InvalidArgument(
                f"update_mask names fields that cannot be changed: {', '.join(unknown)}",
                reason="INVALID_UPDATE_MASK",
                field_violations=[FieldViolation("update_mask", f"{p} is not updatable")
                                  for p in unknown])
        async with self._lock:
            current = await self._get(d.name)
            self._check_manage(current, current_principal())
            if d.etag and d.etag != current.etag:
                raise Aborted(f"deployment {d.name!r} was changed since etag {d.etag}",
                              reason="ETAG_MISMATCH", metadata={"deployment": d.name})
            changes = {_FIELD_ATTR.get(p, p): getattr(d, _FIELD_ATTR.get(p, p))
                       for p in (paths or UPDATABLE_FIELDS)}
            new = dataclasses.replace(current, **changes, update_time=datetime.now(UTC),
                                      etag=uuid.uuid4().hex)
            validate(new)
            await self._check_validation(new, current, override_reason)
            new = await self._apply(new, expected_etag=current.etag, also=also)
        return self.view(new)

    async def set_traffic_split(self, name: str, routes: tuple[Route, ...],
                                etag: str = "", override_reason: str = "", *,
                                also: Callable[[Any], None] | None = None) -> DeploymentView:
        violations = validate_traffic_split(routes)
        if not routes:
            violations.append(FieldViolation("traffic_split.routes", "at least one route"))
        if violations:
            raise InvalidArgument(
                "invalid traffic split: " + "; ".join(f"{v.field}: {v.description}"
                                                       for v in violations),
                reason="INVALID_TRAFFIC_SPLIT", metadata={"deployment": name},
                field_violations=violations)
        current = await self._get(name)
        return await self.update(dataclasses.replace(current, routes=routes, etag=etag),
                                 ["traffic_split"], override_reason, also=also)

    async def delete(self, name: str, etag: str = "") -> None:
        async with self._lock:
            current = await self._get(name)
            self._check_manage(current, current_principal())
            if etag and etag != current.etag:
                raise Aborted(f"deployment {name!r} was changed since etag {etag}",
                              reason="ETAG_MISMATCH", metadata={"deployment": name})
            await asyncio.to_thread(self.store.delete, name)
            self.models.remove(name)
