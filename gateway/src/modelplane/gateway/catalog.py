"""The gateway's view of the contracts: every RPC with its HTTP bindings.

Built from the descriptors of the generated ``modelplane.<service>.v<N>``
modules, found at start-up (no list of services is kept anywhere), so a new
contract is exposed over HTTP as soon as its generated code is installed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from google.api import annotations_pb2 as http_annotations
from google.api import http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor, MethodDescriptor

from modelplane.gateway.path_template import PathTemplate, TemplateSyntaxError, parse_template

log = logging.getLogger(__name__)

_RULE_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True, eq=False)
class RpcMethod:
    """One RPC of a modelplane contract and where its service runs."""

    descriptor: MethodDescriptor
    backend: str
    """The service that implements it (``registry`` for ``modelplane.registry.v1``)."""
    request_class: type[Any]
    response_class: type[Any]
    access: str
    """Least role: ``read``, ``write`` or ``admin`` (the ``modelplane.api.v1.access`` option,
    else GET = read, anything else = write: the kit's ``role_for_method``)."""
    bindings: list[HttpBinding] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The gRPC method path, ``/package.Service/Method``."""
        return f"/{self.descriptor.containing_service.full_name}/{self.descriptor.name}"

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)


@dataclass(frozen=True, eq=False)
class HttpBinding:
    """One HTTP route of an RPC: the primary rule or one of its additional_bindings."""

    method: RpcMethod
    http_method: str
    template: PathTemplate
    body: str
    """``""`` (no body), ``"*"`` (the whole request) or the request field the body fills."""
    response_body: str
    """``""`` (the whole response) or the response field returned as the body."""
    index: int
    """0 for the primary rule, 1.. for additional bindings."""

    @property
    def operation_id(self) -> str:
        svc = self.method.descriptor.containing_service.name
        suffix = f"_{self.index}" if self.index else ""
        return f"{svc}_{self.method.descriptor.name}{suffix}"


class ContractError(ValueError):
    """A contract whose HTTP annotations the gateway cannot serve."""


def backend_of_package(package: str) -> str:
    """``modelplane.registry.v1`` -> ``registry``."""
    parts = package.split(".")
    if len(parts) >= 3 and parts[0] == "modelplane":
        return parts[1]
    raise ContractError(f"package {package!r} is not modelplane.<service>.v<N>")


def _access(method: MethodDescriptor) -> str:
    """``read``/``write``/``admin``, by the same rule the services' auth applies."""
    from modelplane.kit.auth import Role, role_for_method

    role = role_for_method(method)
    return {Role.READER: "read", Role.WRITER: "write", Role.ADMIN: "admin"}[role]


def _resolve_field(message: Descriptor, dotted: str) -> FieldDescriptor:
    desc: Descriptor | None = message
    fd: FieldDescriptor | None = None
    for part in dotted.split("."):
        if desc is None:
            raise ContractError(f"{message.full_name}: {dotted!r} goes through a scalar field")
        fd = desc.fields_by_name.get(part)
        if fd is None:
            raise ContractError(f"{message.full_name} has no field {dotted!r}")
        desc = fd.message_type
    assert fd is not None
    return fd


def _bindings_of(method: RpcMethod) -> list[HttpBinding]:
    opts = method.descriptor.GetOptions()
    if not opts.HasExtension(http_annotations.http):
        return []
    rule: http_pb2.HttpRule = opts.Extensions[http_annotations.http]
    rules = [rule, *rule.additional_bindings]
    out: list[HttpBinding] = []
    request = method.descriptor.input_type
    for index, one in enumerate(rules):
        kind = one.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            http_method, template = one.custom.kind.upper(), one.custom.path
        else:
            http_method, template = kind.upper(), getattr(one, kind)
        try:
            parsed = parse_template(template)
        except TemplateSyntaxError as exc:
            raise ContractError(f"{method.path}: {exc}") from exc
        for var in parsed.variables:
            _resolve_field(request, var.field_path)
        if one.body not in ("", "*"):
            _resolve_field(request, one.body)
        if one.response_body:
            _resolve_field(method.descriptor.output_type, one.response_body)
        out.append(HttpBinding(method, http_method, parsed, one.body, one.response_body, index))
    return out


@dataclass
class Catalog:
    """Every exposed RPC and its HTTP bindings, in routing order."""

    methods: list[RpcMethod]

    @property
    def bindings(self) -> list[HttpBinding]:
        return [b for m in self.methods for b in m.bindings]

    @property
    def backends(self) -> list[str]:
        return sorted({m.backend for m in self.methods})

    @classmethod
    def from_files(cls, files: Iterable[FileDescriptor],
                   backend_of: Callable[[str], str] = backend_of_package) -> Catalog:
        methods: list[RpcMethod] = []
        seen: set[str] = set()
        for file in files:
            for service in file.services_by_name.values():
                if service.full_name in seen:
                    continue
                seen.add(service.full_name)
                backend = backend_of(file.package)
                for md in service.methods:
                    rpc = RpcMethod(
                        descriptor=md,
                        backend=backend,
                        request_class=message_factory.GetMessageClass(md.input_type),
                        response_class=message_factory.GetMessageClass(md.output_type),
                        access="",
                    )
                    try:
                        bindings = _bindings_of(rpc)
                    except ContractError as exc:
                        log.warning("not exposing %s over HTTP: %s", rpc.path, exc)
                        continue
                    if not bindings:
                        log.info("%s has no google.api.http rule; not exposed over HTTP", rpc.path)
                        continue
                    object.__setattr__(rpc, "access", _access(md))
                    rpc.bindings.extend(bindings)
                    methods.append(rpc)
        return cls(methods)

    @classmethod
    def discover(cls, namespace: str = "modelplane") -> Catalog:
        """Import every generated contract module ``<namespace>.<service>.v<N>.*_pb2``."""
        return cls.from_files(m.DESCRIPTOR for m in discover_contract_modules(namespace))


def discover_contract_modules(namespace: str = "modelplane") -> list[ModuleType]:
    """Import the generated ``*_pb2`` modules of every ``<namespace>.<service>.v<N>`` package.

    A module that fails to import is logged and skipped: one broken contract
    must not take the HTTP API of every other service down.
    """
    root = importlib.import_module(namespace)
    names: set[str] = set()
    for base in list(getattr(root, "__path__", [])):
        for path in Path(base).glob("*/v[0-9]*/*_pb2.py"):
            service_dir, version_dir = path.parent.parent.name, path.parent.name
            if not (service_dir.isidentifier() and version_dir[1:].isdigit()):
                continue
            names.add(f"{namespace}.{service_dir}.{version_dir}.{path.stem}")
    modules: list[ModuleType] = []
    for name in sorted(names):
        try:
            modules.append(importlib.import_module(name))
        except Exception:
            log.exception("cannot import contract module %s; its RPCs are not exposed", name)
    return modules
