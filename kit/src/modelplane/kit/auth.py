"""API keys with roles, and which role each RPC needs.

Keys are random tokens sent as ``authorization: Bearer KEY`` (HTTP header and
gRPC metadata alike). Services keep only their SHA-256 in a JSON file of mode
0600::

    {"keys": [{"name": "admin", "role": "admin", "sha256": "…"},
              {"name": "validator", "role": "writer", "service": true, "sha256": "…"},
              {"name": "ana", "role": "writer", "expires": "2027-01-06T10:00:00+00:00",
               "sha256": "…"}]}

A key past its ``expires`` time is refused (``UNAUTHENTICATED``, reason
``API_KEY_EXPIRED``). The file is rewritten atomically (a new file renamed over
the old one), and every reader reloads it when its inode, size or mtime change,
so a key created, revoked or expired is seen by running services without a
restart, even when two changes fall within the file system's mtime granularity.

A key marked ``service`` is a service's own identity (one per service, named
after it): the registry trusts validation results and reserved ``modelplane.*``
tags only from such principals, never from a person's key of any role.

The least role an RPC needs comes from its contract: the
``modelplane.api.v1.access`` method option, else its ``google.api.http`` verb
(GET = read, anything else = write). Foreign contracts (Feast, Open Inference
Protocol) get theirs from the service's ``method_access`` overrides. Health
checks and reflection need no key.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path

from google.protobuf import descriptor_pool

from modelplane.kit.errors import InvalidArgument, NotFound, Unauthenticated


class Role(IntEnum):
    READER = 1
    WRITER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise InvalidArgument(f"unknown role {text!r}; expected reader, writer or admin",
                                  reason="UNKNOWN_ROLE") from None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name (used for audit), its role, and whether the key
    is a service's own identity rather than a person's."""

    name: str
    role: Role
    service: bool = False


ANONYMOUS_ADMIN = Principal("anonymous", Role.ADMIN)
_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "modelplane_principal", default=None)


def current_principal() -> Principal:
    """The caller of the RPC being handled (``anonymous``/admin when auth is off)."""
    return _current.get() or ANONYMOUS_ADMIN


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return "mp_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyEntry:
    """One row of the keys file as ``modelplane keys list`` shows it (never the key or hash)."""

    name: str
    role: Role
    service: bool = False
    expires: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, service=self.service)


def _entry(item: Mapping[str, object]) -> KeyEntry:
    expires = item.get("expires")
    when = datetime.fromisoformat(str(expires)) if expires else None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return KeyEntry(str(item["name"]), Role.parse(str(item["role"])),
                    service=bool(item.get("service", False)), expires=when)


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    # Rewrites rename a new file over the old one, so the inode changes even when two
    # writes land within one mtime tick; size and ctime catch in-place edits by hand.
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


class ApiKeyStore:
    """Key hashes and roles from a JSON file, reloaded when the file changes."""

    def __init__(self, path: Path | None = None, entries: Mapping[str, Principal] | None = None):
        self._path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int, int] | None = None
        self._by_digest: dict[str, KeyEntry] = {
            _digest(key): KeyEntry(p.name, p.role, service=p.service)
            for key, p in (entries or {}).items()}

    def _reload(self) -> None:
        if self._path is None:
            return
        try:
            signature = _signature(self._path.stat())
        except FileNotFoundError:
            with self._lock:  # a deleted keys file lets nobody in any more
                if self._signature is not None:
                    self._by_digest, self._signature = {}, None
            return
        if signature == self._signature:
            return
        with self._lock:
            data = json.loads(self._path.read_text() or "{}")
            self._by_digest = {str(item["sha256"]): _entry(item)
                               for item in data.get("keys", [])}
            self._signature = signature

    def _find(self, key: str) -> KeyEntry | None:
        self._reload()
        digest = _digest(key)
        for known, entry in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return entry
        return None

    def lookup(self, key: str) -> Principal | None:
        """The key's principal; None when it is unknown or expired."""
        entry = self._find(key)
        if entry is None or entry.expired():
            return None
        return entry.principal

    def lookup_digest(self, digest: str) -> Principal | None:
        """Like :meth:`lookup`, from the key's SHA-256 (for sessions that keep no key)."""
        self._reload()
        entry = self._by_digest.get(digest)
        if entry is None or entry.expired():
            return None
        return entry.principal

    def authenticate(self, key: str) -> Principal:
        """The key's principal, else ``Unauthenticated`` saying whether it is unknown or
        expired (the expired key's name is said: its owner can ask for a new one)."""
        entry = self._find(key)
        if entry is None:
            raise Unauthenticated("unknown API key", reason="API_KEY_INVALID")
        if entry.expired():
            assert entry.expires is not None
            raise Unauthenticated(
                f"API key {entry.name!r} expired at {entry.expires.isoformat()}",
                reason="API_KEY_EXPIRED",
                metadata={"key": entry.name, "expired_at": entry.expires.isoformat()})
        return entry.principal


@contextlib.contextmanager
def _locked_keys(path: Path) -> Iterator[dict[str, list[dict[str, object]]]]:
    """The keys file's content to change in place, written back atomically (temporary
    file in the same directory, fsync, rename) under an exclusive lock, so two writers
    (``modelplane up`` and ``modelplane keys``) never lose each other's change."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        data = json.loads(path.read_text() or "{}") if path.exists() else {}
        data.setdefault("keys", [])
        yield data
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


def add_key(path: Path, name: str, role: Role, key: str | None = None, *,
            service: bool = False, expires: datetime | None = None) -> str:
    """Add (or replace) the key called ``name`` in the keys file (mode 0600) and return
    the key. ``service`` marks a service's own identity (see the module docstring);
    ``expires`` is when the key stops working."""
    key = key or generate_key()
    entry: dict[str, object] = {"name": name, "role": role.name.lower(), "sha256": _digest(key)}
    if service:
        entry["service"] = True
    if expires is not None:
        entry["expires"] = (expires if expires.tzinfo else expires.replace(tzinfo=UTC)
                            ).isoformat(timespec="seconds")
    with _locked_keys(path) as data:
        data["keys"] = [k for k in data["keys"] if k["name"] != name] + [entry]
    return key


def remove_key(path: Path, name: str) -> KeyEntry:
    """Delete the key called ``name`` (``NotFound`` when there is none); returns what it was."""
    with _locked_keys(path) as data:
        found = [k for k in data["keys"] if k["name"] == name]
        if not found:
            raise NotFound(f"no API key named {name!r} in {path.name}", reason="API_KEY_NOT_FOUND",
                           metadata={"name": name})
        data["keys"] = [k for k in data["keys"] if k["name"] != name]
    return _entry(found[0])


def list_keys(path: Path) -> list[KeyEntry]:
    """Names, roles, kinds and expiry of the keys in the file (no keys, no hashes)."""
    if not path.exists():
        return []
    data = json.loads(path.read_text() or "{}")
    return [_entry(item) for item in data.get("keys", [])]


def bearer_token(metadata: Mapping[str, str] | None) -> str | None:
    if not metadata:
        return None
    value = metadata.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")


def required_role(full_method: str, overrides: Mapping[str, Role] | None = None) -> Role | None:
    """Least role for ``/pkg.Service/Method``; None means no key is needed."""
    if overrides and full_method in overrides:
        return overrides[full_method]
    service, _, method = full_method.lstrip("/").rpartition("/")
    if service in OPEN_SERVICES:
        return None
    try:
        desc = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except KeyError:
        return Role.WRITER  # unknown to the contracts: the safe side
    return role_for_method(desc)


def role_for_method(desc: object) -> Role:
    """Least role from a MethodDescriptor's options."""
    from google.api import annotations_pb2

    from modelplane.api.v1 import annotations_pb2 as mp_annotations

    options = desc.GetOptions()  # type: ignore[attr-defined]
    access = options.Extensions[mp_annotations.access]
    if access == mp_annotations.ACCESS_READ:
        return Role.READER
    if access == mp_annotations.ACCESS_WRITE:
        return Role.WRITER
    if access == mp_annotations.ACCESS_ADMIN:
        return Role.ADMIN
    rule = options.Extensions[annotations_pb2.http]
    return Role.READER if rule.WhichOneof("pattern") == "get" else Role.WRITER
