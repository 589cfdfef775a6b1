"""Open Inference Protocol v2 REST (``/v2/...``) through the gateway.

Serving speaks OIP REST itself (``tritonclient.http``/KServe clients, Triton's
binary tensor extension); the gateway forwards those requests to it over a pooled
keep-alive HTTP/1.1 client, byte for byte, so every OIP feature serving has works
through the gateway unchanged. What the gateway adds is what it adds to every
route: the API key and role check, a body limit, ``x-request-id``, and its own
SERVER span, whose context replaces the caller's ``traceparent`` so serving's span
is its child.

Errors follow OIP (``{"error": "...", "reason": "..."}``): serving's are passed on
as they are (status and body); the gateway's own are 401/403 (key), 404/405 (not an
OIP route), 413 (body over ``MODELPLANE_GATEWAY_MAX_BODY_BYTES``), 502 (serving
broke the connection), 503 (serving unreachable or not configured) and 504
(serving did not answer within ``MODELPLANE_GATEWAY_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from modelplane.gateway.gateway_auth import GatewayAuth
from modelplane.gateway.http_pool import (
    Answer,
    HttpPool,
    UpstreamBroken,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelplane.gateway.rpc_handler import (
    Receive,
    RequestEntry,
    Scope,
    Send,
    answer_in_span,
    read_body,
)
from modelplane.gateway.settings import GatewaySettings
from modelplane.kit.auth import Role

log = logging.getLogger(__name__)

_JSON = b"application/json"
_SEGMENT = r"[^/]+"
#: (method, raw path regex, route template, least role; None = no key needed)
_ROUTES: tuple[tuple[str, re.Pattern[str], str, Role | None], ...] = tuple(
    (method, re.compile(pattern), template, role)
    for method, pattern, template, role in (
        ("GET", r"/v2/health/live", "/v2/health/live", None),
        ("GET", r"/v2/health/ready", "/v2/health/ready", None),
        ("GET", r"/v2", "/v2", Role.READER),
        ("GET", rf"/v2/models/{_SEGMENT}", "/v2/models/{name}", Role.READER),
        ("GET", rf"/v2/models/{_SEGMENT}/ready", "/v2/models/{name}/ready", Role.READER),
        ("GET", rf"/v2/models/{_SEGMENT}/versions/{_SEGMENT}",
         "/v2/models/{name}/versions/{version}", Role.READER),
        ("GET", rf"/v2/models/{_SEGMENT}/versions/{_SEGMENT}/ready",
         "/v2/models/{name}/versions/{version}/ready", Role.READER),
        ("POST", rf"/v2/models/{_SEGMENT}/infer", "/v2/models/{name}/infer", Role.READER),
        ("POST", rf"/v2/models/{_SEGMENT}/versions/{_SEGMENT}/infer",
         "/v2/models/{name}/versions/{version}/infer", Role.READER),
    ))
#: templates → least role, for the OpenAPI document
ROUTE_ACCESS = {(m, t): r for m, _, t, r in _ROUTES}

# Not passed on to serving: hop-by-hop headers (RFC 9110 7.6.1), what the client
# library sets itself, and what the gateway sets (trace context, request id).
_DROPPED_REQUEST = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host",
    "content-length", "expect", "cookie", "traceparent", "tracestate", "x-request-id",
})
_KEPT_RESPONSE = frozenset({b"content-type", b"inference-header-content-length",
                            b"content-encoding", b"retry-after"})


def is_oip_path(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class OipProxy:
    def __init__(self, settings: GatewaySettings, *, auth: GatewayAuth | None,
                 start_span: Callable[[otel_context.Context, str, dict[str, Any]], trace.Span]
                 ) -> None:
        self.settings = settings
        self.auth = auth
        self.target = settings.oip_target
        self._start_span = start_span
        self._pools: list[HttpPool] = []
        self._turn = 0
        self._access_log = settings.access_log

    def pools(self) -> list[HttpPool]:
        """One keep-alive pool per serving replica named in the target
        (``host:port[,host:port...]``), taken in turn per request."""
        if not self._pools:
            for address in (a.strip() for a in self.target.split(",")):
                if address:
                    host, _, port = address.rpartition(":")
                    self._pools.append(HttpPool(host.strip("[]") or "127.0.0.1", int(port)))
        return self._pools

    async def _forward(self, method: str, url: str, headers: list[tuple[str, str]],
                       body: bytes) -> Answer:
        """Round robin over the replicas; a replica that refuses the connection (nothing
        was sent) passes the request to the next one, each tried at most once."""
        pools = self.pools()
        first = self._turn % len(pools)
        self._turn += 1
        for attempt in range(len(pools)):
            pool = pools[(first + attempt) % len(pools)]
            try:
                return await pool.request(method, url, headers, body,
                                          self.settings.timeout_seconds)
            except UpstreamUnavailable:
                if attempt == len(pools) - 1:
                    raise
                log.warning("serving OIP REST at %s:%s unreachable; trying the next replica",
                            pool.host, pool.port)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pools, self._pools = self._pools, []
        for pool in pools:
            await pool.close()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.split(b"?", 1)[0].decode("latin-1")
        method = scope["method"]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lowered = {k: v for k, v in headers}
        request_id = lowered.get("x-request-id") or uuid.uuid4().hex
        out_headers = [(b"x-request-id", request_id.encode("latin-1"))]
        route = self._route(method, path)
        if route is None or isinstance(route, list):
            await self._no_route(send, method, path, route or [], out_headers)
            return
        template, role = route
        parent = propagate.extract(lowered)
        span = self._start_span(parent, f"{method} {template}", {
            "http.request.method": method, "url.path": path, "http.route": template,
            "modelplane.request_id": request_id, "modelplane.backend": "serving"})
        token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def internal_error(ref: str) -> int:
            return await _error(send, 500, f"internal gateway error (reference {ref})",
                                "GATEWAY_INTERNAL", out_headers)

        await answer_in_span(
            lambda: self._handle(scope, receive, send, method, raw_path, headers, lowered,
                                 (template, role), request_id, out_headers),
            internal_error, span, token,
            RequestEntry(method, path, template, "oip", request_id), log,
            access_log=self._access_log)

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, Role | None] | list[str] | None:
        """(template, role) of the matching route; the allowed methods when only the
        method is wrong; None when no OIP route has that path."""
        allowed: list[str] = []
        for m, pattern, template, role in _ROUTES:
            if pattern.fullmatch(path):
                if m == method or (method == "HEAD" and m == "GET"):
                    return template, role
                allowed.append(m)
        return allowed or None

    async def _no_route(self, send: Send, method: str, path: str, allowed: list[str],
                        headers: list[tuple[bytes, bytes]]) -> None:
        if allowed:
            await _error(send, 405, f"{method} is not allowed on {path}; use "
                         f"{', '.join(allowed)}", "METHOD_NOT_ALLOWED",
                         [*headers, (b"allow", ", ".join(allowed).encode())])
        else:
            await _error(send, 404, f"no Open Inference Protocol route {method} {path[:200]}",
                         "ROUTE_NOT_FOUND", headers)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, method: str,
                      raw_path: bytes, headers: list[tuple[str, str]], lowered: dict[str, str],
                      route: tuple[str, Role | None], request_id: str,
                      out_headers: list[tuple[bytes, bytes]]) -> int:
        template, role = route
        if self.auth is not None and role is not None:
            denied = self.auth.check_role(role, lowered.get("authorization"),
                                          f"{method} {template}")
            if denied is not None:
                code = 401 if denied.code == 16 else 403
                extra = [(b"www-authenticate", b'Bearer realm="modelplane"')] \
                    if code == 401 else []
                reason = _reason(denied)
                return await _error(send, code, denied.message, reason, [*out_headers, *extra])
        too_large = await self._too_large(scope)
        if too_large is not None:
            return await _error(send, 413, too_large, "REQUEST_TOO_LARGE", out_headers)
        body, size = await self._read_body(receive)
        if body is None:
            return await _error(send, 413, self._limit_text(size), "REQUEST_TOO_LARGE",
                                out_headers)
        if not self.target:
            return await _error(send, 503, "no address is configured for serving's OIP REST "
                                "endpoint (MODELPLANE_SERVING_HTTP_TARGET)",
                                "SERVICE_NOT_CONFIGURED", out_headers)
        forward = [(k, v) for k, v in headers if k not in _DROPPED_REQUEST]
        forward.append(("x-request-id", request_id))
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the gateway span is current: serving's becomes its child
        forward.extend(carrier.items())
        query = scope.get("query_string") or b""
        url = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        span = trace.get_current_span()
        try:
            # HEAD goes out as GET (the answer's body is dropped below): the parser then
            # reads the body serving announces instead of waiting for one that never comes
            answer = await self._forward("GET" if method == "HEAD" else method, url,
                                         forward, body)
        except UpstreamUnavailable as exc:
            log.warning("serving OIP REST at %s unreachable: %s", self.target, exc)
            return await _error(send, 503, "service 'serving' (OIP REST) is unavailable",
                                "SERVICE_UNAVAILABLE", out_headers, service=True)
        except UpstreamTimeout:
            return await _error(send, 504, "service 'serving' did not answer in time",
                                "DEADLINE_EXCEEDED", out_headers, service=True)
        except UpstreamBroken as exc:
            log.warning("serving OIP REST at %s failed: %s", self.target, exc)
            return await _error(send, 502, "service 'serving' closed the connection without "
                                "a complete answer", "BAD_GATEWAY", out_headers, service=True)
        span.set_attribute("modelplane.backend.status_code", answer.status)
        kept = [(k, v) for k, v in answer.headers if k in _KEPT_RESPONSE]
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [*kept, (b"content-length", str(len(answer.body)).encode()),
                                *out_headers]})
        await send({"type": "http.response.body",
                    "body": b"" if method == "HEAD" else answer.body})
        return answer.status

    async def _too_large(self, scope: Scope) -> str | None:
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return None  # the server refused such a request already
                if declared > self.settings.max_body_bytes:
                    return self._limit_text(declared)
        return None

    def _limit_text(self, size: int) -> str:
        limit = self.settings.max_body_bytes
        return (f"request body of {size} bytes or more exceeds the limit of {limit} bytes "
                "(MODELPLANE_GATEWAY_MAX_BODY_BYTES)")

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, int]:
        return await read_body(receive, self.settings.max_body_bytes)


def _reason(status: Any) -> str:
    from google.rpc import error_details_pb2

    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


async def _error(send: Send, status: int, message: str, reason: str,
                 headers: list[tuple[bytes, bytes]], *, service: bool = False) -> int:
    """An OIP error body: ``{"error": message, "reason": REASON}``."""
    payload: dict[str, Any] = {"error": message, "reason": reason}
    if service:
        payload["service"] = "serving"
    body = _dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
    return status
