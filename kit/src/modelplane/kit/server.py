"""Server bootstrap: one way to run a modelplane gRPC service.

``serve(spec, settings)`` runs until SIGTERM/SIGINT, then stops gracefully;
``running(spec, settings)`` is the same server as an async context manager
(tests). Every server gets, in this order:

1. the guard: a server span per call (W3C trace context from the metadata,
   OpenTelemetry's RPC attributes), API-key authentication, the least role per RPC, and the one
   place where a ``ModelplaneError`` becomes a ``google.rpc.Status`` (any
   other exception becomes INTERNAL with a reference id, logged, never sent);
   it also records each call's status code and duration (``telemetry.rpc_metrics``:
   request rate, errors and latency per RPC, on ``/metrics`` when
   ``MODELPLANE_METRICS_ADDR`` is set),
2. ``grpc.health.v1`` (NOT_SERVING until ``on_start`` has finished) and
   server reflection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

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


# Server-side gRPC statuses that mark the span as an error (OpenTelemetry's RPC
# conventions: the server's own failures, not the caller's bad requests).
_SERVER_ERRORS = frozenset({"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL",
                            "UNAVAILABLE", "DATA_LOSS"})
_CODE_NUMBERS = {code.name: code.value[0] for code in grpc.StatusCode}


class _Method:
    """What the guard knows of one method, worked out on its first call: the least role,
    its spans' attributes and the metric series' children (each ``labels()`` call takes
    a lock and builds a key; once per method is enough)."""

    __slots__ = ("_by_peer", "attributes", "counters", "duration", "label", "method", "role")

    def __init__(self, method: str, role: Role | None, service: str, metrics: Any) -> None:
        self.method = method
        self.role = role
        self.label = method.lstrip("/")
        rpc_service, _, rpc_method = self.label.partition("/")
        self.attributes = {"rpc.system": "grpc", "rpc.service": rpc_service,
                           "rpc.method": rpc_method, "rpc.grpc.status_code": 0}
        self.duration = metrics.duration.labels(service, self.label)
        self.counters: dict[str, Any] = {}
        self._by_peer: dict[tuple[str, str | None], dict[str, Any]] = {}

    def span_attributes(self, peer: str, user_agent: str | None) -> dict[str, Any]:
        """The server span's attributes as OpenTelemetry's gRPC instrumentation sets them
        (RPC names, caller's address and user agent); one dict per connection's caller,
        kept (a peer string is parsed once, not per call)."""
        key = (peer, user_agent)
        known = self._by_peer.get(key)
        if known is not None:
            return known
        attributes = dict(self.attributes)
        if user_agent:
            attributes["rpc.user_agent"] = user_agent
        if peer.startswith(("ipv4:", "ipv6:")):
            host, _, port = peer.split(",")[0].split(":", 1)[1].rpartition(":")
            host = unquote(host)
            attributes["net.peer.ip"] = host
            attributes["net.peer.port"] = port
            if host in ("[::1]", "127.0.0.1"):
                attributes["net.peer.name"] = "localhost"
        if len(self._by_peer) >= 1024:  # many short connections: start again
            self._by_peer.clear()
        self._by_peer[key] = attributes
        return attributes


# grpc ships no type stubs, so ServerInterceptor is Any to mypy (subclassing Any).
class _Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The kit's one server interceptor: the call's server span (W3C trace context from
    the metadata), its principal and role check, the mapping of its errors, and its
    metrics. One interceptor, and each method's wrapped handler made once: the generic
    OpenTelemetry interceptor, stacked before this one, cost 12-17 % of a one-row
    lookup's GIL time (see the kit README, "Design notes")."""

    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self._spec = spec
        self._auth = settings.auth_enabled
        self._keys = ApiKeyStore(settings.api_keys_file) if self._auth else None
        self._domain = f"{spec.name}.modelplane.dev"
        self._metrics = rpc_metrics()
        self._in_flight = self._metrics.in_flight.labels(spec.name)
        self._tracer = trace.get_tracer("modelplane.kit.server")
        # method -> (the handler as registered, its wrapped form, what we know of it)
        self._handlers: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        known = self._handlers.get(details.method)
        if known is not None and known[0] is handler:
            return known[1]
        method = details.method
        rpc = _Method(method, required_role(method, self._spec.method_access),
                      self._spec.name, self._metrics)
        wrapped = self._wrap(handler, rpc)
        self._handlers[method] = (handler, wrapped)
        return wrapped

    def _authenticate(self, rpc: _Method, metadata: Sequence[tuple[str, Any]]
                      ) -> tuple[Principal | None, ModelplaneError | None]:
        role = rpc.role
        if role is None:
            return None, None
        if not self._auth:
            return ANONYMOUS_ADMIN, None
        method = rpc.method
        token = bearer_token({k: v for k, v in metadata if not k.endswith("-bin")})
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

    def _begin(self, rpc: _Method, context: grpc.aio.ServicerContext) -> _Call:
        """Open the call: its server span (current from here on), principal and metrics."""
        metadata = context.invocation_metadata() or ()
        parent = otel_context.get_current()
        carrier = {k: v for k, v in metadata if not k.endswith("-bin")}
        if carrier:
            parent = propagate.extract(carrier, context=parent)
        span = self._tracer.start_span(rpc.method, context=parent, kind=SpanKind.SERVER,
                                       attributes=rpc.span_attributes(context.peer(),
                                                                      carrier.get("user-agent")))
        scope = otel_context.attach(trace.set_span_in_context(span, parent))
        principal, error = self._authenticate(rpc, metadata)
        self._in_flight.inc()
        return _Call(span, scope, set_principal(principal), error, time.perf_counter())

    def _end(self, rpc: _Method, call: _Call, code: str) -> None:
        reset_principal(call.principal)
        self._in_flight.dec()
        counter = rpc.counters.get(code)
        if counter is None:
            counter = rpc.counters[code] = self._metrics.requests.labels(
                self._spec.name, rpc.label, code)
        counter.inc()
        rpc.duration.observe(time.perf_counter() - call.started)
        span = call.span
        if code != "OK" and span.is_recording():  # the span began with status code 0
            span.set_attribute("rpc.grpc.status_code", _CODE_NUMBERS.get(code, 2))
            if code in _SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, code))
        otel_context.detach(call.scope)
        span.end()

    async def _abort(self, context: grpc.aio.ServicerContext, error: ModelplaneError) -> None:
        status = to_status(error, self._domain)
        await context.abort(grpc_code(error), error.message,
                            trailing_metadata=((DETAILS_KEY, status.SerializeToString()),))

    async def _fail(self, context: grpc.aio.ServicerContext, call: _Call, method: str,
                    exc: BaseException) -> str:
        """Answer ``exc`` as a status; the status code's name."""
        if isinstance(exc, ModelplaneError):
            if exc.code == "INTERNAL":
                log.error("%s failed: %s", method, exc.message)
            error = exc
        elif isinstance(exc, NotImplementedError):
            error = Unimplemented(
                f"{method} is not implemented yet by the {self._spec.name} service",
                metadata={"method": method})
        else:
            ref = uuid.uuid4().hex[:12]
            log.exception("%s raised an unexpected error (reference %s)", method, ref)
            if call.span.is_recording():
                call.span.record_exception(exc)
            error = Internal(f"internal error in {self._spec.name} (reference {ref})",
                             metadata={"reference": ref})
        code: str = grpc_code(error).name
        try:
            await self._abort(context, error)
        finally:
            call.code = code
        return code

    @contextlib.asynccontextmanager
    async def _guarded(self, context: grpc.aio.ServicerContext,
                       rpc: _Method) -> AsyncIterator[None]:
        """The streaming calls' guard: the same steps as ``unary_response`` below."""
        call = self._begin(rpc, context)
        try:
            if call.error is not None:
                raise call.error
            yield
        except BaseException as exc:  # noqa: BLE001 - _settle raises on all but errors
            await self._settle(context, call, rpc, exc)
        finally:
            self._end(rpc, call, call.code)

    async def _settle(self, context: grpc.aio.ServicerContext, call: _Call, rpc: _Method,
                      exc: BaseException) -> None:
        """What a call raised: an abort or a cancellation goes on with its code noted;
        any other exception is answered as its status (``_fail``)."""
        if isinstance(exc, grpc.aio.AbortError):
            if call.code == "OK":
                call.code = _code_name(context)
            raise exc
        if isinstance(exc, asyncio.CancelledError):
            call.code = "CANCELLED"
            raise exc
        if not isinstance(exc, Exception):  # GeneratorExit of a stream closed early, ...
            raise exc
        await self._fail(context, call, rpc.method, exc)  # the one place errors are mapped

    def _wrap(self, handler: Any, rpc: _Method) -> Any:
        serializers = {"request_deserializer": handler.request_deserializer,
                       "response_serializer": handler.response_serializer}

        if handler.unary_unary or handler.stream_unary:
            behavior = handler.unary_unary or handler.stream_unary
            begin, end, settle = self._begin, self._end, self._settle
            is_coroutine = inspect.iscoroutinefunction(behavior)

            # The hot path: written out rather than through ``_guarded``, whose context
            # manager costs a generator and two awaits per call.
            async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                call = begin(rpc, context)
                try:
                    if call.error is not None:
                        raise call.error
                    result = behavior(request, context)
                    if is_coroutine or inspect.isawaitable(result):
                        result = await result
                    return result
                except BaseException as exc:  # noqa: BLE001 - settle raises on all but errors
                    await settle(context, call, rpc, exc)
                finally:
                    end(rpc, call, call.code)

            make = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                    else grpc.stream_unary_rpc_method_handler)
            return make(unary_response, **serializers)

        guarded = self._guarded
        behavior = handler.unary_stream or handler.stream_stream
        make = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
                else grpc.stream_stream_rpc_method_handler)
        if inspect.isasyncgenfunction(behavior):
            async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
                async with guarded(context, rpc):
                    async for item in behavior(request, context):
                        yield item
            return make(stream_response, **serializers)

        async def stream_writer(request: Any, context: grpc.aio.ServicerContext) -> None:
            async with guarded(context, rpc):
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    await result
        return make(stream_writer, **serializers)


class _Call:
    """One call in flight: its span and the context tokens to give back at its end."""

    __slots__ = ("code", "error", "principal", "scope", "span", "started")

    def __init__(self, span: Any, scope: contextvars.Token[otel_context.Context],
                 principal: Any,
                 error: ModelplaneError | None, started: float) -> None:
        self.span = span
        self.scope = scope
        self.principal = principal
        self.error = error
        self.started = started
        self.code = "OK"


def _code_name(context: grpc.aio.ServicerContext) -> str:
    """The status code a handler aborted with (``context.abort``)."""
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 - an older grpc without ServicerContext.code()
        return "UNKNOWN"
    return str(getattr(code, "name", None) or code or "UNKNOWN")


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
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        interceptors=[_Guard(spec, settings)],
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
