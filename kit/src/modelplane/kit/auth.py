"""API keys with roles, and which role each RPC needs.

Keys are random tokens sent as ``authorization: Bearer KEY`` (HTTP header and
gRPC metadata alike). Services keep only their SHA-256 in a JSON file of mode
0600::

    {"keys": [{"name": "admin", "role": "admin", "sha256": "…"},
              {"name": "validator", "role": "writer", "service": true, "sha256": "…"}]}

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

import contextvars
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from google.protobuf import descriptor_pool

from modelplane.kit.errors import InvalidArgument


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


class ApiKeyStore:
    """Key hashes and roles from a JSON file, reloaded when the file changes."""

    def __init__(self, path: Path | None = None, entries: Mapping[str, Principal] | None = None):
        self._path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._by_digest: dict[str, Principal] = {
            _digest(key): p for key, p in (entries or {}).items()}

    def _reload(self) -> None:
        if self._path is None:
            return
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._mtime:
            return
        with self._lock:
            data = json.loads(self._path.read_text() or "{}")
            self._by_digest = {
                item["sha256"]: Principal(item["name"], Role.parse(item["role"]),
                                          service=bool(item.get("service", False)))
                for item in data.get("keys", [])
            }
            self._mtime = mtime

    def lookup(self, key: str) -> Principal | None:
        self._reload()
        digest = _digest(key)
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def add_key(path: Path, name: str, role: Role, key: str | None = None, *,
            service: bool = False) -> str:
    """Append a key to the keys file (created with mode 0600) and return the key.
    ``service`` marks a service's own identity (see the module docstring)."""
    key = key or generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"keys": []}
    data["keys"] = [k for k in data["keys"] if k["name"] != name]
    entry: dict[str, object] = {"name": name, "role": role.name.lower(), "sha256": _digest(key)}
    if service:
        entry["service"] = True
    data["keys"].append(entry)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(path, 0o600)
    return key


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
