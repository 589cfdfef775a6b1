"""Our app plugin for ``mlflow server --app-name modelplane`` (entry point ``mlflow.app``).

Runs inside MLflow's uvicorn workers and wraps MLflow's own app, so the stock
client and UI keep working while the registry's rules hold on MLflow's REST API
too:

- **API keys** (ASGI middleware, every route including the artifact proxy):
  ``Authorization: Bearer KEY`` - what the stock client sends when
  ``MLFLOW_TRACKING_TOKEN`` is set - or HTTP Basic with the key as password (the
  browser prompt for the UI). The least role of each route comes from MLflow's own
  route table (``mlflow_routes.py``; routes it does not list are admin-only).
  ``/health`` and ``/version`` are open. Off when ``MODELPLANE_AUTH=off``.
- **Who is calling** reaches Flask in the internal principal header; every spelling
  of it a caller sends is dropped first (WSGI maps ``-`` and ``_`` alike).
- **What MLflow will run**: writes are parsed with MLflow's own request parser;
  bodies it would read differently (a JSON string, another content type, fields in
  the query) are refused with 400 before MLflow runs.
- **Promotion gate** on ``POST .../registered-models/alias``: a protected alias
  moves only onto a version with a PASS validation. There is no override over
  REST: an override needs a reason, given through the registry's gRPC SetAlias.
  Deleting a model or version under a protected alias is refused.
- **Reserved tags**: ``modelplane.*`` model and version tags are written only by
  service identities, so validation cannot be forged to pass the gate.
- **Audit and events**: alias sets and deletes (also those implied by deleting a
  version or model) go to the alias history with the key's name and the move
  MLflow actually made; every registry write appends an event, which is what
  keeps the registry's resolve cache exact and feeds WatchModelEvents.
- **Lineage**: a version registered with the stock client gets lineage version
  tags copied from its run (``modelplane.dataset_id``, ``modelplane.feature_refs``,
  ``mlflow.source.git.commit``).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from modelplane.kit.auth import ANONYMOUS_ADMIN, ApiKeyStore, Principal, Role
from modelplane.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    ModelplaneError,
    PermissionDenied,
    Unauthenticated,
)
from modelplane.kit.settings import ServiceSettings
from modelplane.registry import version_tags as vt
from modelplane.registry.history import PendingEvent, RegistryHistory
from modelplane.registry.mlflow_routes import SAFE_METHODS, RouteTable, request_classes, route_key
from modelplane.registry.model import AliasChange, ChangeOrigin, EventType
from modelplane.registry.promotion import PromotionGate
from modelplane.registry.settings import RegistrySettings

log = logging.getLogger("modelplane.registry.mlflow_app")

PRINCIPAL_HEADER = "x-modelplane-principal"
OPEN_PATHS = frozenset({"/health", "/version"})

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


def is_principal_header(name: bytes) -> bool:
    """Every spelling of the internal header: WSGI turns ``-`` and ``_`` alike into
    ``HTTP_X_MODELPLANE_PRINCIPAL``, and header names are case-insensitive."""
    return name.decode("latin-1").lower().replace("_", "-") == PRINCIPAL_HEADER


def principal_header_value(principal: Principal) -> bytes:
    return "|".join((principal.name, principal.role.name,
                     "service" if principal.service else "person")).encode()


def principal_from_header(value: str | None) -> Principal:
    name, _, rest = (value or "anonymous|ADMIN|person").partition("|")
    role, _, kind = rest.partition("|")
    try:
        return Principal(name, Role[role], service=kind == "service")
    except KeyError:
        return Principal(name, Role.READER)


def _token(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization", b"").decode("latin-1").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if scheme.lower() == "basic" and rest.strip():
        try:
            _, _, password = base64.b64decode(rest.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password or None
    return None


class ApiKeyMiddleware:
    """Authenticates every HTTP request, checks its route's least role and tells Flask
    who is calling (in the internal principal header, which no caller can set)."""

    def __init__(self, app: ASGIApp, keys: ApiKeyStore | None, routes: RouteTable) -> None:
        self.app = app
        self.keys = keys
        self.routes = routes

    async def _deny(self, send: Callable[[Any], Awaitable[None]], status: int, code: str,
                    message: str) -> None:
        body = json.dumps({"error_code": code, "message": message}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Basic realm="modelplane MLflow"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = [(k, v) for k, v in scope.get("headers", []) if not is_principal_header(k)]
        path, method = scope.get("path", ""), scope.get("method", "GET")
        principal: Principal | None = ANONYMOUS_ADMIN
        if self.keys is not None and path not in OPEN_PATHS:
            token = _token({k.lower(): v for k, v in raw})
            if token is None:
                await self._deny(send, 401, "UNAUTHENTICATED", "missing API key: set "
                                 "MLFLOW_TRACKING_TOKEN to a modelplane API key")
                return
            try:
                principal = self.keys.authenticate(token)
            except Unauthenticated as exc:  # unknown, or expired (then its name and when)
                await self._deny(send, 401, "UNAUTHENTICATED", exc.message)
                return
            needed = self.routes.role(method, path)
            if principal.role < needed:
                await self._deny(send, 403, "PERMISSION_DENIED",
                                 f"key {principal.name!r} has role {principal.role.name.lower()}; "
                                 f"{method} {path} needs {needed.name.lower()}")
                return
        assert principal is not None
        raw.append((PRINCIPAL_HEADER.encode(), principal_header_value(principal)))
        await self.app({**scope, "headers": raw}, receive, send)


class RegistryRestGuard:
    """Flask hooks: the gate, reserved tags, audit and events for MLflow's REST API.

    The guard reads a request exactly as MLflow will: the body parsed by MLflow's own
    ``_get_request_message`` into the route's protobuf message. Bodies MLflow would
    read differently from a plain JSON object - a JSON *string* (MLflow decodes it a
    second time), another content type (MLflow parses any body as JSON), a field
    given in the query string (MLflow ignores the query of a write) - are refused
    with 400 before MLflow runs.
    """

    def __init__(self, history: RegistryHistory, gate: PromotionGate) -> None:
        self.history = history
        self.gate = gate
        self.classes = request_classes()

    # plumbing ------------------------------------------------------------------------
    @staticmethod
    def _principal(request: Any) -> Principal:
        return principal_from_header(request.headers.get(PRINCIPAL_HEADER))

    @staticmethod
    def _registry_store() -> Any:
        from mlflow.server.handlers import _get_model_registry_store

        return _get_model_registry_store()

    @staticmethod
    def _tracking_store() -> Any:
        from mlflow.server.handlers import _get_tracking_store

        return _get_tracking_store()

    @staticmethod
    def _error(status: int, code: str, message: str) -> Any:
        from flask import Response

        return Response(json.dumps({"error_code": code, "message": message}), status=status,
                        mimetype="application/json")

    def _aliases(self, name: str) -> dict[str, int]:
        try:
            rm = self._registry_store().get_registered_model(name)
        except Exception:  # noqa: BLE001 - MLflow itself will answer with the error
            return {}
        return {a: int(v) for a, v in (rm.aliases or {}).items()}

    @staticmethod
    def _check_body(request: Any, message_class: type) -> None:
        """Refuse what MLflow would decode differently from a JSON object body."""
        descriptor = message_class.DESCRIPTOR  # type: ignore[attr-defined]
        fields = {f.name for f in descriptor.fields} | {f.json_name for f in descriptor.fields}
        in_query = sorted(k for k in request.args if k in fields)
        if in_query:
            raise InvalidArgument(
                f"{request.method} {request.path}: {', '.join(in_query)} given in the query "
                "string; MLflow reads a write's parameters from its JSON body only",
                reason="QUERY_PARAMETERS_IN_WRITE")
        raw = request.get_data(cache=True)
        if not raw.strip():
            return
        if (request.mimetype or "") != "application/json":
            raise InvalidArgument(
                f"{request.method} {request.path}: a body of content-type "
                f"{request.mimetype or '(none)'!r}; MLflow's REST writes take application/json",
                reason="CONTENT_TYPE_NOT_JSON")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise InvalidArgument(
                f"{request.method} {request.path}: the body must be one JSON object (a JSON "
                "string holding JSON, an array or invalid JSON is refused)",
                reason="BODY_NOT_JSON_OBJECT")

    # hooks ---------------------------------------------------------------------------
    def before_request(self) -> Any:
        from flask import g, request

        if request.method in SAFE_METHODS or request.url_rule is None:
            return None
        key = route_key(str(request.url_rule.rule))
        message_class = self.classes.get((key, request.method))
        if message_class is None:
            return None  # not a JSON-message route (artifact bytes, graphql, the UI's pages)
        try:
            self._check_body(request, message_class)
            from mlflow.server.handlers import _get_request_message

            try:
                message = _get_request_message(message_class(), flask_request=request)
            except Exception:  # noqa: BLE001 - MLflow refuses the same request itself
                return None
            return self._before(key.removeprefix("mlflow/"), message, request, g)
        except ModelplaneError as exc:
            if isinstance(exc, PermissionDenied):
                return self._error(403, "PERMISSION_DENIED", exc.message)
            if isinstance(exc, InvalidArgument):
                return self._error(400, "INVALID_PARAMETER_VALUE", exc.message)
            return self._error(400, "INVALID_STATE", exc.message)

    def _before(self, endpoint: str, message: Any, request: Any, g: Any) -> Any:
        principal = self._principal(request)
        name = str(getattr(message, "name", "") or "")
        g.modelplane = {"endpoint": endpoint, "message": message, "name": name,
                        "principal": principal}
        if endpoint in ("model-versions/set-tag", "model-versions/delete-tag",
                        "registered-models/set-tag", "registered-models/delete-tag"):
            self.gate.check_reserved_tag(principal, str(message.key))
        elif endpoint in ("model-versions/create", "registered-models/create"):
            for tag in message.tags:
                self.gate.check_reserved_tag(principal, str(tag.key))
        elif endpoint == "registered-models/alias":
            alias = str(message.alias)
            g.modelplane["from_version"] = self._aliases(name).get(alias, 0)
            if request.method == "POST":
                version = str(message.version)
                try:
                    mv = self._registry_store().get_model_version(name, version)
                except Exception:  # noqa: BLE001 - MLflow answers NOT_FOUND itself
                    return None
                validation = vt.validation_from_tags(dict(mv.tags or {}))
                g.modelplane["validation"] = validation
                self.gate.decide(model=name, version=int(mv.version), alias=alias,
                                 validation=validation, override_reason="",
                                 principal=principal, allow_override=False)
        elif endpoint == "registered-models/delete":
            aliases = self._aliases(name)
            g.modelplane["aliases"] = aliases
            protected = sorted(a for a in aliases if self.gate.is_protected(a))
            if protected:
                raise FailedPrecondition(
                    f"model {name!r} has protected alias(es) {', '.join(protected)}; delete "
                    "them first (or use the registry's DeleteModel with force)",
                    reason="PROTECTED_ALIAS_IN_USE")
        elif endpoint == "model-versions/delete":
            aliases = self._aliases(name)
            g.modelplane["aliases"] = aliases
            version = str(message.version)
            protected = sorted(a for a, v in aliases.items()
                               if self.gate.is_protected(a) and str(v) == version)
            if protected:
                raise FailedPrecondition(
                    f"version {version} of model {name!r} holds protected alias(es) "
                    f"{', '.join(protected)}; move or delete them first",
                    reason="PROTECTED_ALIAS_IN_USE")
        return None

    def after_request(self, response: Any) -> Any:
        from flask import g

        state = getattr(g, "modelplane", None)
        if state is None or not 200 <= response.status_code < 300:
            return response
        for attempt in range(1, 4):
            try:
                self._after(state, response)
                return response
            except Exception:
                log.exception("recording %s for the registry failed (attempt %d)",
                              state.get("endpoint"), attempt)
                time.sleep(0.2 * attempt)
        # MLflow has the change but the registry's history and caches do not know it:
        # say so instead of pretending all is well.
        return self._error(503, "TEMPORARILY_UNAVAILABLE",
                           "the change was applied in MLflow but could not be recorded in the "
                           "modelplane registry's audit history; the registry may serve the "
                           "previous state until its next change - retry the same request")

    def _after(self, state: dict[str, Any], response: Any) -> None:
        endpoint, message, name = state["endpoint"], state["message"], state["name"]
        who = state["principal"].name
        mlflow = ChangeOrigin.MLFLOW

        def event(kind: EventType, model: str = name, version: int = 0) -> PendingEvent:
            return PendingEvent(kind, model, version, principal=who, origin=mlflow)

        def change(alias: str, old: int, new: int, reason: str = "",
                   validation: Any = None) -> None:
            self.history.record_alias_change(AliasChange(
                model_name=name, alias=alias, from_version=old, to_version=new, principal=who,
                origin=mlflow, reason=reason, validation=validation))

        raw_version = str(getattr(message, "version", "") or "0")
        version = int(raw_version) if raw_version.isascii() and raw_version.isdigit() else 0
        if endpoint == "registered-models/alias":
            alias = str(message.alias)
            # What MLflow did, read back from its store, not what the request said.
            now = self._aliases(name).get(alias, 0)
            if now != state.get("from_version", 0):
                change(alias, state.get("from_version", 0), now,
                       validation=state.get("validation") if now else None)
        elif endpoint == "registered-models/create":
            self.history.record_events([event(EventType.MODEL_CREATED)])
        elif endpoint == "registered-models/rename":
            new_name = str(message.new_name)
            self.history.record_events([event(EventType.MODEL_DELETED),
                                        event(EventType.MODEL_CREATED, new_name)])
        elif endpoint in ("registered-models/update", "registered-models/set-tag",
                          "registered-models/delete-tag"):
            self.history.record_events([event(EventType.MODEL_UPDATED)])
        elif endpoint == "registered-models/delete":
            for alias, old in sorted(state.get("aliases", {}).items()):
                change(alias, old, 0, "model deleted")
            self.history.record_events([event(EventType.MODEL_DELETED)])
        elif endpoint == "model-versions/create":
            created = json.loads(response.get_data()).get("model_version", {})
            new_version = int(created.get("version", 0))
            self._add_lineage(name, new_version, created.get("run_id", ""), who)
            self.history.record_events([event(EventType.VERSION_CREATED, version=new_version)])
        elif endpoint in ("model-versions/update", "model-versions/set-tag",
                          "model-versions/delete-tag", "model-versions/transition-stage"):
            self.history.record_events([event(EventType.VERSION_UPDATED, version=version)])
        elif endpoint == "model-versions/delete":
            for alias, old in sorted(state.get("aliases", {}).items()):
                if old == version:
                    change(alias, old, 0, "version deleted")
            self.history.record_events([event(EventType.VERSION_DELETED, version=version)])

    def _add_lineage(self, name: str, version: int, run_id: str, who: str) -> None:
        tags = {vt.CREATED_BY: who}
        if run_id:
            try:
                run = self._tracking_store().get_run(run_id)
                tags.update(vt.lineage_tags_from_run(dict(run.data.tags),
                                                     run.info.experiment_id))
            except Exception as exc:  # noqa: BLE001 - lineage is best effort here
                log.info("no run %s for lineage: %s", run_id, exc)
        from mlflow.entities.model_registry import ModelVersionTag

        store = self._registry_store()
        for key, value in tags.items():
            store.set_model_version_tag(name, str(version), ModelVersionTag(key, value))


def create_app(app: Any = None) -> Any:
    """The factory ``mlflow server --app-name modelplane`` runs in each worker."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import create_fastapi_app

    flask_app = app or flask_app
    settings = RegistrySettings.from_service(ServiceSettings.from_env("registry"))
    history = RegistryHistory(settings.database_url)
    history.create_tables()
    guard = RegistryRestGuard(history, settings.promotion_gate())
    flask_app.before_request(guard.before_request)
    flask_app.after_request(guard.after_request)
    if _MLFLOW_SGI_NAME.get() not in (None, "uvicorn"):
        raise RuntimeError("the modelplane MLflow app runs under uvicorn (mlflow server's "
                           "default); do not pass --gunicorn-opts or --waitress-opts")
    keys = ApiKeyStore(settings.service.api_keys_file) if settings.service.auth_enabled else None
    return ApiKeyMiddleware(create_fastapi_app(flask_app), keys, RouteTable(flask_app))
