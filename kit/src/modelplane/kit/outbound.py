"""Outbound HTTP calls to caller-named URLs (webhooks), under one policy.

A caller who may name a URL the platform calls could otherwise make a service
reach what only the service can reach: its own loopback ports, the cluster's
private addresses, the cloud's metadata endpoint (and the credentials behind
it). So, by default, a URL is refused when its host is, or resolves to, any
address that is not globally routable: loopback, link-local, private (RFC 1918,
unique-local IPv6), shared, reserved, multicast, unspecified, and the cloud
metadata addresses. An allow-list (CIDRs and host names) opens chosen ones.

The check happens after DNS resolution, and the connection is made to the
address that was checked, not to the name again (a name that resolves to a
public address once and to 127.0.0.1 the next time — DNS rebinding — cannot slip
through). HTTPS still verifies the certificate against the URL's host name.
Redirects are never followed; responses are read up to a bound; every read has
a timeout and every call a deadline.

Errors: :class:`OutboundRefused` (a ``PermissionDenied`` naming the setting)
for a refused URL, :class:`OutboundFailed` for a call that did not get an
answer (network, timeout, TLS). Neither imports grpc.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from modelplane.kit.errors import InvalidArgument, PermissionDenied

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance-metadata endpoints: refused even under a broad allow-listed
#: range, unless the address itself is listed.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",   # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2",     # AWS ECS task metadata
    "169.254.169.123",   # AWS time sync
    "fd00:ec2::254",     # AWS IMDS over IPv6
    "fd00:ec2::23",
    "100.100.100.200",   # Alibaba Cloud
    "192.0.0.192",       # Oracle Cloud (legacy)
))

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024


class OutboundRefused(PermissionDenied):
    """The URL's address is not one the policy lets this service call."""


class OutboundFailed(Exception):
    """The call got no HTTP answer (DNS, connect, TLS, timeout)."""


Resolver = Callable[[str, int], list[IPAddress]]


def resolve_host(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    return out


def _unmapped(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:
            return addr.sixtofour
        if addr.teredo is not None:
            return addr.teredo[1]
    return addr


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses a service may call. ``setting`` names the environment
    variable holding the allow-list, for the error a refused caller reads."""

    setting: str
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    resolver: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def parse(cls, setting: str, value: str | Iterable[str] | None,
              resolver: Resolver = resolve_host) -> OutboundPolicy:
        """``value``: comma-separated CIDRs, addresses or host names (``*.x`` for subdomains)."""
        items = value.split(",") if isinstance(value, str) else list(value or ())
        nets: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(setting, tuple(nets), frozenset(hosts), resolver)

    def _host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.allow_hosts or any(
            h.startswith("*.") and host.endswith(h[1:]) for h in self.allow_hosts)

    def address_allowed(self, addr: IPAddress) -> bool:
        plain = _unmapped(addr)
        listed = [n for n in self.allow_networks
                  if plain.version == n.version and plain in n]
        if plain in METADATA_ADDRESSES or addr in METADATA_ADDRESSES:
            return any(n.num_addresses == 1 for n in listed)
        if listed:
            return True
        return plain.is_global and not plain.is_multicast

    def _refuse(self, field_name: str, url: str, why: str) -> OutboundRefused:
        return OutboundRefused(
            f"{field_name}: {why}; calls to loopback, link-local, private and cloud-metadata "
            f"addresses are refused unless allow-listed in {self.setting}",
            reason="OUTBOUND_ADDRESS_REFUSED",
            metadata={"setting": self.setting, "field": field_name})

    def check(self, url: str, field_name: str = "url") -> Target:
        """The URL's target, its host resolved and every address checked; raises
        InvalidArgument for a malformed URL, OutboundRefused for a refused one."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidArgument(f"{field_name}: not a URL ({exc})", reason="INVALID_URL",
                                  metadata={"field": field_name}) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"{field_name}: must be an http:// or https:// URL",
                                  reason="INVALID_URL", metadata={"field": field_name})
        if parts.username or parts.password:
            raise InvalidArgument(f"{field_name}: credentials in the URL are not accepted",
                                  reason="INVALID_URL", metadata={"field": field_name})
        host = parts.hostname
        port = port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise InvalidArgument(f"{field_name}: host {host!r} does not resolve ({exc})",
                                      reason="UNRESOLVABLE_HOST",
                                      metadata={"field": field_name}) from None
            if not addresses:
                raise InvalidArgument(f"{field_name}: host {host!r} does not resolve",
                                      reason="UNRESOLVABLE_HOST", metadata={"field": field_name})
        if literal is None and self._host_allowed(host):
            return Target(parts.scheme, host, port, path, addresses[0])
        # Every address must pass: a name resolving to one public and one private
        # address could be answered by either.
        for addr in addresses:
            if not self.address_allowed(addr):
                raise self._refuse(field_name, url, f"{host} resolves to {addr}"
                                   if literal is None else f"address {addr} is not public")
        return Target(parts.scheme, host, port, path, addresses[0])


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    body: bytes  # at most the bound given to :func:`post_json`
    location: str = ""


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = str(target.address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = str(target.address)
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def post_json(policy: OutboundPolicy, url: str, body: bytes, *,
              headers: Mapping[str, str] | None = None, timeout: float = 5.0,
              total_timeout: float | None = None,
              max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
              ssl_context: ssl.SSLContext | None = None) -> OutboundResponse:
    """POST ``body`` (JSON) to ``url`` once, after the policy's check, connecting to
    the checked address. ``timeout`` bounds each connect and read; ``total_timeout``
    (default 3 × ``timeout``) the whole call, so a receiver dripping its answer
    byte by byte cannot hold the caller. A redirect is returned as it came (never
    followed); at most ``max_response_bytes`` of the answer are read."""
    target = policy.check(url)
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPS(target, timeout, ssl_context or ssl.create_default_context())
    else:
        conn = _PinnedHTTP(target, timeout)
    send = {"content-type": "application/json", "user-agent": "modelplane",
            **(headers or {})}
    expired = threading.Event()

    def cut() -> None:  # at the deadline: whatever the call waits for fails at once
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(total_timeout or 3 * timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", target.path, body=body, headers=send)
        resp = conn.getresponse()
        data = resp.read(max_response_bytes)
        if expired.is_set():
            raise TimeoutError("the answer took longer than the call's deadline")
        return OutboundResponse(resp.status, data, resp.getheader("location") or "")
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise OutboundFailed(f"no answer within {total_timeout or 3 * timeout:g}s") from None
        raise OutboundFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        conn.close()
