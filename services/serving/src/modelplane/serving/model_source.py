"""Where model versions come from: the registry (``models:/name@alias``), and its alias events.

:class:`ModelSource` is the seam: :class:`MlflowModelSource` talks to an MLflow
tracking server / file store directly (polling aliases for changes), and
``adapters.registry_source.RegistryModelSource`` uses the registry service's
``ResolveModelUri`` / ``WatchModelEvents``. Both hand back a
:class:`ResolvedModel`: the concrete version and the URI to load it from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from modelplane.kit.errors import ModelplaneError, NotFound, Unavailable
from modelplane.serving.deployment import ModelTarget

log = logging.getLogger("modelplane.serving.model_source")
#: where the registry keeps a version's validation status (an MLflow version tag)
VALIDATION_STATUS_TAG = "modelplane.validation.status"


@dataclass(frozen=True)
class ResolvedModel:
    """A registered model version and where its MLflow model lives."""

    model: str
    version: str
    source_uri: str
    run_id: str = ""
    #: the version's validation status in the registry: PASS, WARN, FAIL or "" (none)
    validation_status: str = ""


@dataclass(frozen=True)
class AliasEvent:
    """``model@alias`` now points at ``version`` ("" = the alias was removed)."""

    model: str
    alias: str
    version: str


class ModelSource(Protocol):
    async def resolve(self, target: ModelTarget) -> ResolvedModel: ...

    def alias_events(self, watched: Callable[[], set[tuple[str, str]]],
                     on_connected: Callable[[], None] | None = None
                     ) -> AsyncIterator[AliasEvent]:
        """Alias changes of the ``watched()`` aliases; ``on_connected`` is called each time
        the source (re)connects (what waited for the registry can load now)."""
        ...

    async def close(self) -> None: ...


_TRANSIENT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED",
                              "ABORTED"})


def is_transient(exc: BaseException) -> bool:
    """Did loading fail because a dependency (registry, MLflow) did not answer (worth
    retrying by itself), rather than for a permanent reason (unknown model or alias,
    unreadable artifact, refused key)?"""
    if isinstance(exc, ModelplaneError):
        return exc.code in _TRANSIENT_CODES
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (ConnectionError, TimeoutError)) or _is_requests_connection_error(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _is_requests_connection_error(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover - MLflow depends on it
        return False
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def local_path_of(uri: str) -> str:
    """``file://`` URIs as plain paths (MLflow's Model.load only finds local *paths*)."""
    if uri.startswith("file:"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return url2pathname(urlparse(uri).path)
    return uri


class MlflowModelSource:
    """Resolves targets with the stock MLflow client; follows aliases by polling."""

    def __init__(self, tracking_uri: str, *, poll_seconds: float = 1.0) -> None:
        import mlflow
        from mlflow import MlflowClient

        # Loading a version's artifacts (MLflow 3 logged models) needs the same store.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._poll = poll_seconds

    def _resolve(self, target: ModelTarget) -> ResolvedModel:
        from mlflow.exceptions import MlflowException

        try:
            if target.alias:
                mv = self._client.get_model_version_by_alias(target.model, target.alias)
            else:
                mv = self._client.get_model_version(target.model, target.version)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise NotFound(f"{target.uri} does not exist in the registry",
                               reason="MODEL_VERSION_NOT_FOUND",
                               metadata={"model": target.model, "selector":
                                         target.alias or target.version}) from None
            raise Unavailable(f"the registry could not resolve {target.uri}: {exc.message}",
                              reason="REGISTRY_UNAVAILABLE",
                              metadata={"model": target.model}) from None
        uri = local_path_of(self._client.get_model_version_download_uri(mv.name, mv.version))
        return ResolvedModel(mv.name, str(mv.version), uri, mv.run_id or "",
                             (mv.tags or {}).get(VALIDATION_STATUS_TAG, ""))

    async def resolve(self, target: ModelTarget) -> ResolvedModel:
        return await asyncio.to_thread(self._resolve, target)

    async def alias_events(self, watched: Callable[[], set[tuple[str, str]]],
                           on_connected: Callable[[], None] | None = None
                           ) -> AsyncIterator[AliasEvent]:
        known: dict[tuple[str, str], str] = {}
        reachable = False
        while True:
            answered = failed = False
            for model, alias in sorted(watched()):
                try:
                    r = await self.resolve(ModelTarget(model=model, alias=alias))
                    version = r.version
                except NotFound:
                    version = ""
                except Exception as exc:  # noqa: BLE001 - keep watching through outages
                    log.warning("alias poll of %s@%s failed: %s", model, alias, exc)
                    failed = True
                    continue
                answered = True
                previous = known.get((model, alias))
                known[(model, alias)] = version
                # The first look at a newly watched alias yields too: it may have moved
                # after the deployment resolved it (a no-op when it did not).
                if previous != version and (previous is not None or version):
                    yield AliasEvent(model, alias, version)
            if answered or failed:
                if answered and not failed and not reachable and on_connected is not None:
                    on_connected()  # it answers (again, after an outage)
                reachable = answered and not failed
            await asyncio.sleep(self._poll)

    async def close(self) -> None:
        return None
