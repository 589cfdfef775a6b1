"""Server bootstrap: one way to run a modelplane gRPC service.

``serve(spec, settings)`` runs until SIGTERM/SIGINT, then stops gracefully;
``running(spec, settings)`` is the same server as an async context manager
(tests). Every server gets, in this order:

1. OpenTelemetry server instrumentation (W3C trace context from metadata),
2. the guard: API-key authentication, the least role per RPC, and the one
   place where a ``ModelplaneError`` becomes a ``google.rpc.Status`` (any
   other exception becomes INTERNAL with a reference id, logged, never sent);
   it also records each call's status code and duration (``telemetry.rpc_metrics``:
   request rate, errors and latency per RPC, on ``/metrics`` when
   ``MODELPLANE_METRICS_ADDR`` is set),
3. ``grpc.health.v1`` (NOT_SERVING until ``on_start`` has finished) and
   server reflection.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from modelplane.kit.auth import (
    ANONYMOUS_ADMIN,
    ApiKeyStore,
    Principal,
    Role,
    bearer_token,
    required_role,
    reset_principal,
    set_principal,
)
from modelplane.kit.clients import SERVER_KEEPALIVE_OPTIONS
from modelplane.kit.errors import (
    Internal,
    ModelplaneError,
    PermissionDenied,
    Unauthenticated,
    Unimplemented,
)
from modelplane.kit.settings import ServiceSettings
from modelplane.kit.status import DETAILS_KEY, grpc_code, to_status
from modelplane.kit.telemetry import rpc_metrics, serve_metrics, setup_logging, setup_tracing

log = logging.getLogger("modelplane.kit.server")

Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Servicer:
    """A generated ``add_XServicer_to_server``, its implementation and full service name."""

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    implementation: object
    service_name: str


@dataclass
class ServiceSpec:
    name: str
    servicers: Sequence[Servicer]
    on_start: Hook | None = None
    on_stop: Hook | None = None
    #: least role per full method ("/pkg.Svc/Method") for contracts without our option
    method_access: Mapping[str, Role] = field(default_factory=dict)


# grpc ships no type stubs, so ServerInterceptor is Any to mypy (subclassing Any).
class _Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self._spec = spec
        self._auth = settings.auth_enabled
        self._keys = ApiKeyStore(settings.api_keys_file) if self._auth else None
        self._domain = f"{spec.name}.modelplane.dev"
        self._roles: dict[str, Role | None] = {}
        self._metrics = rpc_metrics()
        self._in_flight = self._metrics.in_flight.labels(spec.name)

    def _required_role(self, method: str) -> Role | None:
        # The contract does not change while the server runs: look each method up once.
        if method not in self._roles:
            self._roles[method] = required_role(method, self._spec.method_access)
        return self._roles[method]

    def _authenticate(self, method: str, metadata: Mapping[str, Any]
                      ) -> tuple[Principal | None, ModelplaneError | None]:
        role = self._required_role(method)
        if role is None:
            return None, None
        if not self._auth:
            return ANONYMOUS_ADMIN, None
        token = bearer_token(metadata)
        if token is None:
            return None, Unauthenticated(
                "missing API key: send the metadata 'authorization: Bearer <key>'",
                reason="API_KEY_MISSING", metadata={"method": method})
        assert self._keys is not None
        try:
            principal = self._keys.authenticate(token)
        except Unauthenticated as exc:
            exc.metadata["method"] = method
            return None, exc
        if principal.role < role:
            return None, PermissionDenied(
                f"key {principal.name!r} has role {principal.role.name.lower()}; "
                f"{method} needs {role.name.lower()}",
                reason="ROLE_TOO_LOW",
                metadata={"method": method, "required_role": role.name.lower(),
                          "role": principal.role.name.lower()})
        return principal, None

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        metadata = {k: v for k, v in (details.invocation_metadata or ())
                    if not k.endswith("-bin")}
        principal, error = self._authenticate(details.method, metadata)
        return self._wrap(handler, details.method, principal, error)

    async def _abort(self, context: grpc.aio.ServicerContext, error: ModelplaneError) -> None:
        status = to_status(error, self._domain)
        await context.abort(grpc_code(error), error.message,
                            trailing_metadata=((DETAILS_KEY, status.SerializeToString()),))

    async def _fail(self, context: grpc.aio.ServicerContext, method: str,
                    exc: BaseException) -> None:
        if isinstance(exc, ModelplaneError):
            if exc.code == "INTERNAL":
                log.error("%s failed: %s", method, exc.message)
            await self._abort(context, exc)
        elif isinstance(exc, NotImplementedError):
            await self._abort(context, Unimplemented(
                f"{method} is not implemented yet by the {self._spec.name} service",
                metadata={"method": method}))
        else:
            ref = uuid.uuid4().hex[:12]
            log.exception("%s raised an unexpected error (reference %s)", method, ref)
            await self._abort(context, Internal(
                f"internal error in {self._spec.name} (reference {ref})",
                metadata={"reference": ref}))

    @contextlib.asynccontextmanager
    async def _guarded(self, context: grpc.aio.ServicerContext, method: str,
                       principal: Principal | None,
                       error: ModelplaneError | None) -> AsyncIterator[None]:
        """The one place a handler's errors are mapped, with the caller's principal set."""
        token = set_principal(principal)
        started = time.perf_counter()
        code = "OK"
        self._in_flight.inc()
        try:
            if error is not None:
                raise error
            yield
        except grpc.aio.AbortError:
            code = _code_name(context)
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception as exc:  # noqa: BLE001 - the one place errors are mapped
            code = _error_code(exc)
            await self._fail(context, method, exc)
        finally:
            reset_principal(token)
            self._in_flight.dec()
            self._metrics.observe(self._spec.name, method.lstrip("/"), code,
                                  time.perf_counter() - started)

    def _wrap(self, handler: Any, method: str, principal: Principal | None,
              error: ModelplaneError | None) -> Any:
        guarded = self._guarded
        serializers = {"request_deserializer": handler.request_deserializer,
                       "response_serializer": handler.response_serializer}

        if handler.unary_unary or handler.stream_unary:
            behavior = handler.unary_unary or handler.stream_unary

            async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with guarded(context, method, principal, error):
                    result = behavior(request, context)
                    return await result if inspect.isawaitable(result) else result

            make = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                    else grpc.stream_unary_rpc_method_handler)
            return make(unary_response, **serializers)

        behavior = handler.unary_stream or handler.stream_stream
        make = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
                else grpc.stream_stream_rpc_method_handler)
        if inspect.isasyncgenfunction(behavior):
            async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with guarded(context, method, principal, error):
                    async for item in behavior(request, context):
                        yield item
            return make(stream_response, **serializers)

        async def stream_writer(request: Any, context: grpc.aio.ServicerContext) -> None:
            async with guarded(context, method, principal, error):
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    await result
        return make(stream_writer, **serializers)


def _code_name(context: grpc.aio.ServicerContext) -> str:
    """The status code a handler aborted with (``context.abort``)."""
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 - an older grpc without ServicerContext.code()
        return "UNKNOWN"
    return str(getattr(code, "name", None) or code or "UNKNOWN")


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ModelplaneError):
        name: str = grpc_code(exc).name
        return name
    if isinstance(exc, NotImplementedError):
        return "UNIMPLEMENTED"
    return "INTERNAL"


@dataclass
class RunningService:
    spec: ServiceSpec
    settings: ServiceSettings
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    @property
    def address(self) -> str:
        host = self.settings.listen.rsplit(":", 1)[0] or "127.0.0.1"
        if host in ("0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ["", *(s.service_name for s in self.spec.servicers)]:
            await self.health.set(name, status)


def _server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert:
        return None
    assert settings.tls_key is not None, "MODELPLANE_TLS_KEY must accompany MODELPLANE_TLS_CERT"
    chain = settings.tls_cert.read_bytes()
    key = settings.tls_key.read_bytes()
    ca = settings.tls_ca.read_bytes() if settings.tls_ca else None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=ca,
                                       require_client_auth=ca is not None)


def build_server(spec: ServiceSpec, settings: ServiceSettings) -> tuple[grpc.aio.Server, Any]:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    limit = settings.max_message_bytes
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), _Guard(spec, settings)],
        options=[("grpc.max_receive_message_length", limit),
                 ("grpc.max_send_message_length", limit),
                 ("grpc.so_reuseport", 0),
                 # accept the kit channels' keepalive pings (see clients.KEEPALIVE_OPTIONS)
                 *SERVER_KEEPALIVE_OPTIONS],
    )
    for servicer in spec.servicers:
        servicer.add_to_server(servicer.implementation, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.service_name for s in spec.servicers]
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME], server)
    return server, health_servicer


@contextlib.asynccontextmanager
async def running(spec: ServiceSpec, settings: ServiceSettings) -> AsyncIterator[RunningService]:
    """Start the service, run ``on_start``, report SERVING; stop it all on exit."""
    server, health_servicer = build_server(spec, settings)
    creds = _server_credentials(settings)
    port = (server.add_secure_port(settings.listen, creds) if creds
            else server.add_insecure_port(settings.listen))
    await server.start()
    svc = RunningService(spec, settings, server, health_servicer, port)
    await svc.set_serving(False)
    started = False
    try:
        if spec.on_start is not None:
            await spec.on_start()
        started = True
        await svc.set_serving(True)
        log.info("%s serving on %s", spec.name, svc.address)
        yield svc
    finally:
        # Drain in-flight RPCs first, then release what they were using.
        await svc.set_serving(False)
        try:
            await server.stop(settings.grace_seconds)
        finally:
            if started and spec.on_stop is not None:
                await spec.on_stop()
            log.info("%s stopped", spec.name)


async def serve(spec: ServiceSpec, settings: ServiceSettings) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight RPCs and stop."""
    setup_logging(spec.name)
    setup_tracing(spec.name)
    if settings.metrics_addr:
        serve_metrics(settings.metrics_addr)
        log.info("%s metrics on http://%s/metrics", spec.name, settings.metrics_addr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        # A stop while ``on_start`` still runs (waiting for a database, a child server)
        # abandons the start at once instead of finishing it only to drain nothing:
        # a supervisor's SIGTERM is answered in well under its grace period.
        starting = asyncio.ensure_future(stack.enter_async_context(running(spec, settings)))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("%s: stop requested while starting; start abandoned", spec.name)
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return
        if starting.exception() is not None:
            stopping.cancel()
            starting.result()  # the failed start's own error
        await stopping
        log.info("%s: stop requested, draining", spec.name)
