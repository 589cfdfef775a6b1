"""The ASGI app that turns one HTTP request into one gRPC call and back.

Unary RPCs answer one JSON object. Server-streaming RPCs answer
newline-delimited JSON, one ``{"result": {...}}`` per message and, if the
stream fails after it started, a last ``{"error": {...}}`` line (the
grpc-gateway convention). Client-streaming RPCs take a JSON array or NDJSON
body, one request message per element.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import Token
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TracerProvider,
)

from modelplane.gateway.backends import Backends, NoTarget
from modelplane.gateway.catalog import Catalog, HttpBinding
from modelplane.gateway.gateway_auth import GatewayAuth
from modelplane.gateway.request_builder import BadInput, RequestBuilder, Violation
from modelplane.gateway.routing import Router
from modelplane.gateway.settings import GatewaySettings
from modelplane.gateway.status_mapping import (
    http_status,
    make_status,
    status_from_rpc_error,
    status_json,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = b"application/json"
_NDJSON = b"application/x-ndjson"
_FORWARDED_PREFIX = "grpc-metadata-"
# gRPC's default limit for a call's metadata is 8 KiB (soft) / 16 KiB (hard); the
# gateway's own entries (traceparent, tracestate) need room too.
_MAX_METADATA_BYTES = 6 * 1024
_METADATA_KEY = re.compile(r"[0-9a-z_.\-]+")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def parse_grpc_timeout(value: str) -> float | None:
    """The ``grpc-timeout`` header (``10S``, ``500m``, ``2M``) in seconds, None if malformed."""
    units = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
    value = value.strip()
    digits = value[:-1]
    if (len(value) < 2 or len(value) > 9 or value[-1] not in units
            or not (digits.isascii() and digits.isdigit())):
        return None
    return int(value[:-1]) * units[value[-1]]


class Transcoder:
    def __init__(self, catalog: Catalog, settings: GatewaySettings, backends: Backends, *,
                 tracer_provider: TracerProvider | None = None,
                 auth: GatewayAuth | None = None) -> None:
        self.catalog = catalog
        self.settings = settings
        self.backends = backends
        self.router = Router(catalog.bindings)
        self.auth = auth
        self._builders: dict[int, RequestBuilder] = {}
        self._provider = tracer_provider
        self._tracer = trace.get_tracer("modelplane.gateway", tracer_provider=tracer_provider)
        self._proto_names = settings.json_names == "proto"
        self._access_log = settings.access_log

    # ------------------------------------------------------------------ helpers

    def _spans_recorded(self) -> bool:
        """Whether a finished span goes anywhere (an exporter or other processor).

        The kit installs an SDK provider in every process (log lines carry trace
        ids) even when nothing exports spans; recording spans then costs tens of
        microseconds per request for nothing, so the gateway only carries the
        trace context on in that case.
        """
        provider = self._provider or trace.get_tracer_provider()
        active = getattr(provider, "_active_span_processor", None)
        processors = getattr(active, "_span_processors", None)
        return processors is None or bool(processors)

    def start_span(self, parent: otel_context.Context, name: str,
                   attributes: dict[str, Any]) -> trace.Span:
        """The gateway's SERVER span for one request (recorded only when exported)."""
        if self._spans_recorded():
            return self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER,
                                           attributes=attributes)
        caller = trace.get_current_span(parent).get_span_context()
        if caller.is_valid:
            trace_id, flags, state = caller.trace_id, caller.trace_flags, caller.trace_state
        else:
            trace_id, flags, state = (random.getrandbits(128), TraceFlags(TraceFlags.SAMPLED),
                                      None)
        return NonRecordingSpan(SpanContext(trace_id, random.getrandbits(64), is_remote=False,
                                            trace_flags=flags, trace_state=state))

    def builder(self, binding: HttpBinding) -> RequestBuilder:
        found = self._builders.get(id(binding))
        if found is None:
            found = self._builders[id(binding)] = RequestBuilder(binding)
        return found

    def to_json(self, message: Message) -> Any:
        return json_format.MessageToDict(message,
                                         preserving_proto_field_name=self._proto_names,
                                         always_print_fields_with_no_presence=True)

    def _response_value(self, binding: HttpBinding, message: Message) -> Any:
        data = self.to_json(message)
        if binding.response_body:
            fd = message.DESCRIPTOR.fields_by_name[binding.response_body]
            return data.get(fd.name if self._proto_names else fd.json_name)
        return data

    def error_json(self, status: status_pb2.Status) -> dict[str, Any]:
        return status_json(status, self._proto_names)

    async def _send_status(self, send: Send, status: status_pb2.Status,
                           headers: list[tuple[bytes, bytes]]) -> int:
        code = http_status(status.code)
        body = _dumps(self.error_json(status))
        extra = []
        if status.code == code_pb2.UNAUTHENTICATED:
            extra.append((b"www-authenticate", b'Bearer realm="modelplane"'))
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", _JSON),
                                (b"content-length", str(len(body)).encode()),
                                *headers, *extra]})
        await send({"type": "http.response.body", "body": body})
        return code

    async def _read_body(self, scope: Scope, receive: Receive, where: str) -> bytes:
        limit = self.settings.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise BadInput("bad Content-Length header",
                                   [Violation("content-length", "not an integer")]) from None
                if declared > limit:
                    raise _too_large(where, declared, limit)
        body, size = await read_body(receive, limit)
        if body is None:
            raise _too_large(where, size, limit)
        return body

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.split(b"?", 1)[0].decode("latin-1")
        method = scope["method"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        response_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        found = self.router.find(method, path)
        parent = propagate.extract(headers)
        if found is None:
            await self._no_route(send, method, path, response_headers)
            return
        binding, path_values = found
        rpc = binding.method
        span = self.start_span(parent, f"{method} {binding.template.template}", {
            "http.request.method": method, "url.path": path,
            "http.route": binding.template.template, "rpc.system": "grpc",
            "rpc.method": rpc.path, "modelplane.request_id": request_id})
        token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def internal_error(ref: str) -> int:
            return await self._send_status(send, make_status(
                code_pb2.INTERNAL, f"internal gateway error (reference {ref})",
                reason="GATEWAY_INTERNAL", metadata={"reference": ref}), response_headers)

        await answer_in_span(
            lambda: self._handle(scope, receive, send, binding, path_values, headers,
                                 request_id, response_headers),
            internal_error, span, token,
            RequestEntry(method, path, binding.template.template, rpc.path, request_id),
            log, access_log=self._access_log)

    async def _no_route(self, send: Send, method: str, path: str,
                        headers: list[tuple[bytes, bytes]]) -> None:
        allowed = self.router.allowed_methods(path)
        if allowed:
            status = make_status(code_pb2.UNIMPLEMENTED,
                                 f"{method} is not allowed on {path}; use {', '.join(allowed)}",
                                 reason="METHOD_NOT_ALLOWED",
                                 metadata={"allowed": ",".join(allowed)})
            body = _dumps(self.error_json(status))
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"content-type", _JSON),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"allow", ", ".join(allowed).encode()), *headers]})
            await send({"type": "http.response.body", "body": body})
            return
        await self._send_status(send, make_status(
            code_pb2.NOT_FOUND, f"no API route for {method} {path}", reason="ROUTE_NOT_FOUND",
            metadata={"path": path[:200], "method": method}), headers)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, binding: HttpBinding,
                      path_values: dict[str, str], headers: dict[str, str], request_id: str,
                      response_headers: list[tuple[bytes, bytes]]) -> int:
        rpc = binding.method
        builder = self.builder(binding)
        try:
            if self.auth is not None:
                denied = self.auth.check(rpc, headers.get("authorization"))
                if denied is not None:
                    return await self._send_status(send, denied, response_headers)
            body = await self._read_body(scope, receive, builder.body_where) \
                if binding.body or rpc.client_streaming else None
            query = parse_qsl(scope["query_string"].decode("utf-8"), keep_blank_values=True) \
                if scope.get("query_string") else []
            timeout = self.settings.timeout_seconds
            if "grpc-timeout" in headers:
                parsed = parse_grpc_timeout(headers["grpc-timeout"])
                if parsed is None:
                    raise BadInput("malformed grpc-timeout header", [Violation(
                        "grpc-timeout", "expected digits and a unit (H, M, S, m, u, n): '10S'")])
                timeout = parsed
            if rpc.client_streaming:
                request: Any = builder.build_stream(path_values, query, body)
            else:
                request = builder.build(path_values, query, body)
            metadata = self._metadata(headers, request_id)
        except BadInput as exc:
            return await self._send_status(send, make_status(
                code_pb2.INVALID_ARGUMENT, exc.message, reason=exc.reason,
                metadata={"method": rpc.path}, violations=exc.violations), response_headers)
        except UnicodeDecodeError:
            return await self._send_status(send, make_status(
                code_pb2.INVALID_ARGUMENT, "query string is not UTF-8", reason="INVALID_QUERY",
                violations=[Violation("query", "not valid UTF-8 after percent-decoding")]),
                response_headers)

        try:
            call = self.backends.callable_for(rpc)
        except NoTarget:
            return await self._send_status(send, make_status(
                code_pb2.UNAVAILABLE, f"no address is configured for service {rpc.backend!r}",
                reason="SERVICE_NOT_CONFIGURED", metadata={"service": rpc.backend}),
                response_headers)

        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the gateway span is current: the service becomes its child
        metadata.extend(carrier.items())
        span = trace.get_current_span()
        if rpc.server_streaming:
            stream_timeout = timeout if "grpc-timeout" in headers else None
            return await self._stream_out(receive, send, binding, call, request, metadata,
                                          stream_timeout, response_headers, span)
        try:
            response = await call(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            status = status_from_rpc_error(exc, rpc.backend)
            span.set_attribute("rpc.grpc.status_code", status.code)
            return await self._send_status(send, status, response_headers)
        except ValueError as exc:  # e.g. metadata values gRPC refuses
            return await self._send_status(send, make_status(
                code_pb2.INVALID_ARGUMENT, f"request headers not accepted: {exc}",
                reason="INVALID_HEADER"), response_headers)
        span.set_attribute("rpc.grpc.status_code", 0)
        body_bytes = _dumps(self._response_value(binding, response))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", _JSON),
                                (b"content-length", str(len(body_bytes)).encode()),
                                *response_headers]})
        await send({"type": "http.response.body", "body": body_bytes})
        return 200

    @staticmethod
    def _metadata(headers: dict[str, str], request_id: str) -> list[tuple[str, str]]:
        """gRPC metadata from the HTTP headers passed on; values gRPC cannot carry
        (non-printable or non-ASCII) are a 400 naming the header."""
        metadata = [("x-request-id", request_id)]
        auth = headers.get("authorization")
        if auth:
            metadata.append(("authorization", auth))
        for key, value in headers.items():
            if key.startswith(_FORWARDED_PREFIX) and len(key) > len(_FORWARDED_PREFIX):
                name = key[len(_FORWARDED_PREFIX):]
                if not _METADATA_KEY.fullmatch(name) or name.endswith("-bin") or \
                        name in ("authorization", "x-request-id") or name.startswith("grpc-"):
                    raise BadInput(f"header {key!r} cannot be passed on", [Violation(
                        key, "not a usable gRPC metadata key (lowercase letters, digits, "
                             "'-', '_', '.'; not -bin, grpc-*, authorization, x-request-id)")],
                        reason="INVALID_HEADER")
                metadata.append((name, value))
        total = 0
        for name, value in metadata:
            total += len(name) + len(value)
            if total > _MAX_METADATA_BYTES or (name == "x-request-id" and len(value) > 256):
                header = name if name in ("authorization", "x-request-id") \
                    else _FORWARDED_PREFIX + name
                raise BadInput(f"header {header!r} is too large to pass on", [Violation(
                    header, f"forwarded headers are limited to {_MAX_METADATA_BYTES} bytes "
                            "in total, x-request-id to 256 characters")],
                    reason="HEADER_TOO_LARGE")
            if not (value.isascii() and value.isprintable()):
                header = name if name in ("authorization", "x-request-id") \
                    else _FORWARDED_PREFIX + name
                raise BadInput(f"header {header!r} has characters gRPC metadata cannot carry",
                               [Violation(header, "only printable ASCII is allowed")],
                               reason="INVALID_HEADER")
        return metadata

    async def _stream_out(self, receive: Receive, send: Send, binding: HttpBinding, call: Any,
                          request: Any, metadata: list[tuple[str, str]], timeout: float | None,
                          response_headers: list[tuple[bytes, bytes]], span: trace.Span) -> int:
        try:
            stream = call(request, metadata=metadata, timeout=timeout)
        except ValueError as exc:
            return await self._send_status(send, make_status(
                code_pb2.INVALID_ARGUMENT, f"request headers not accepted: {exc}",
                reason="INVALID_HEADER"), response_headers)
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, stream))
        try:
            return await self._relay(send, binding, stream, response_headers, span)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if watcher.done() and not watcher.cancelled() and task is not None \
                    and not task.cancelling():
                raise ClientGone from None  # the caller left; its stream was cancelled
            raise
        finally:
            watcher.cancel()
            if not stream.done():
                stream.cancel()

    async def _relay(self, send: Send, binding: HttpBinding, stream: Any,
                     response_headers: list[tuple[bytes, bytes]], span: trace.Span) -> int:
        """Wait for the first message (a failure before it is a plain HTTP error), then
        send one NDJSON line per message and, if the stream fails, an error line."""
        rpc = binding.method
        iterator = stream.__aiter__()
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            first = None
        except grpc.aio.AioRpcError as exc:
            status = status_from_rpc_error(exc, rpc.backend)
            span.set_attribute("rpc.grpc.status_code", status.code)
            return await self._send_status(send, status, response_headers)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", _NDJSON), *response_headers]})
        code = 0
        if first is not None:
            await send({"type": "http.response.body", "more_body": True,
                        "body": _dumps({"result": self._response_value(binding, first)}) + b"\n"})
            try:
                async for message in iterator:
                    line = _dumps({"result": self._response_value(binding, message)})
                    await send({"type": "http.response.body", "more_body": True,
                                "body": line + b"\n"})
            except grpc.aio.AioRpcError as exc:
                status = status_from_rpc_error(exc, rpc.backend)
                code = status.code
                await send({"type": "http.response.body", "more_body": True,
                            "body": _dumps({"error": self.error_json(status)}) + b"\n"})
        await send({"type": "http.response.body", "body": b""})
        span.set_attribute("rpc.grpc.status_code", code)
        return 200


class ClientGone(Exception):
    """The HTTP client disconnected before the answer was complete."""


@dataclass(frozen=True)
class RequestEntry:
    """One request as its failure and access log lines name it."""

    method: str
    path: str
    route: str
    rpc: str
    request_id: str


async def answer_in_span(handle: Callable[[], Awaitable[int]],
                         internal_error: Callable[[str], Awaitable[int]], span: Span,
                         token: Token[otel_context.Context], request: RequestEntry,
                         logger: logging.Logger, *, access_log: bool) -> None:
    """Run ``handle`` (it answers the request and returns the HTTP status) inside the
    request's ``span`` (attached as ``token``), for the transcoded RPCs and the OIP proxy
    alike. The last line of defence: whatever ``handle`` raises is logged with a reference
    and answered by ``internal_error(reference)`` (500), never as a stack trace. Then the
    span gets the status and ends, and the access log (when on) has the request's line."""
    status = 500
    started = time.perf_counter() if access_log else 0.0
    try:
        status = await handle()
    except ClientGone:
        status = 499  # nobody left to answer
    except asyncio.CancelledError:
        status = 499
        raise
    except Exception:  # the last line of defence: never a stack trace to the caller
        ref = uuid.uuid4().hex[:12]
        logger.exception("gateway failure on %s %s (reference %s)", request.method,
                         request.path, ref)
        try:
            status = await internal_error(ref)
        except Exception:  # noqa: BLE001 - response already started; nothing more to say
            logger.debug("could not send the error response (reference %s)", ref)
    finally:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(StatusCode.ERROR)
        if access_log:
            logger.info("%s %s %d", request.method, request.path, status, extra={"fields": {
                "http_method": request.method, "path": request.path, "route": request.route,
                "rpc": request.rpc, "status": status, "request_id": request.request_id,
                "duration_ms": round((time.perf_counter() - started) * 1e3, 3)}})
        span.end()
        otel_context.detach(token)


async def read_body(receive: Receive, limit: int) -> tuple[bytes | None, int]:
    """The ASGI request body and its size; ``None`` as soon as it passes ``limit`` bytes.

    Raises :class:`ClientGone` when the client disconnects first.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None, size
            chunks.append(chunk)
        if not message.get("more_body", False):
            return (b"".join(chunks) if len(chunks) != 1 else chunks[0]), size


async def _cancel_on_disconnect(receive: Receive, stream: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.cancel()
            return


def _too_large(where: str, size: int, limit: int) -> BadInput:
    return BadInput(f"request body is larger than the limit of {limit} bytes",
                    [Violation(where, f"body of {size} bytes or more exceeds the limit of "
                                      f"{limit} bytes (MODELPLANE_GATEWAY_MAX_BODY_BYTES)")],
                    reason="REQUEST_TOO_LARGE")
