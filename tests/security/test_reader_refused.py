"""A reader changes nothing: every mutating RPC of every modelplane contract, generated
from the descriptors (the kit's ``role_for_method`` above reader), is refused for a
reader key over gRPC to its service (``PERMISSION_DENIED``) and through the gateway
over HTTP on the route its ``google.api.http`` rule names (403), on one real platform
started with ``modelplane up --detach``.

Requests are not empty: the names in them point at an entity and a model that exist
(so a delete or update let through would change them) or at new ones (so a create let
through would add one). Every list RPC that answers an empty request is read with the
admin key before and after: the answers must be identical.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor, json_format, message_factory
from google.protobuf.message import Message

from modelplane.kit.auth import Role, role_for_method
from modelplane.kit.pytest_plugin import free_port_block
from modelplane.kit.settings import DEFAULT_PORTS, SERVICES

SEEDED = "reader_probe"  # an entity and a model that exist
NEW = "reader_probe_new"  # a name nothing has
#: request fields that name an existing resource (path parameters, deletes, updates)
EXISTING_FIELDS = {"name", "id", "model_name", "feature_view"}


@dataclass(frozen=True)
class Rpc:
    service: str  # featurestore, registry, ...
    method: descriptor.MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def __str__(self) -> str:
        return f"{self.service}.{self.method.name}"


def _contract_rpcs() -> list[Rpc]:
    found = []
    for service in SERVICES:
        module = importlib.import_module(f"modelplane.{service}.v1.{service}_pb2")
        for svc in module.DESCRIPTOR.services_by_name.values():
            found += [Rpc(service, m) for m in svc.methods]
    return found


ALL_RPCS = _contract_rpcs()
MUTATING = [rpc for rpc in ALL_RPCS if role_for_method(rpc.method) > Role.READER]


def _message_class(desc: descriptor.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(desc)


def _fill(msg: Message, *, creating: bool, depth: int = 0) -> None:
    """Names that point at the seeded resources (or, inside a resource being created,
    at a new one), so a call that got through would change something visible."""
    for field in msg.DESCRIPTOR.fields:
        if field.is_repeated:
            continue
        if field.type == field.TYPE_STRING:
            if field.name == "alias":
                setattr(msg, field.name, "champion")
            elif field.name == "version":
                setattr(msg, field.name, "1")
            elif field.name in EXISTING_FIELDS:
                setattr(msg, field.name, NEW if creating and depth > 0 else SEEDED)
        elif field.type == field.TYPE_MESSAGE and depth == 0 and \
                field.message_type.file.package.startswith("modelplane."):
            _fill(getattr(msg, field.name), creating=creating, depth=depth + 1)


def _request(rpc: Rpc) -> Message:
    msg = _message_class(rpc.method.input_type)()
    _fill(msg, creating=rpc.method.name.startswith("Create"))
    return msg


def _field_value(msg: Message, dotted: str) -> str:
    value: Any = msg
    for part in dotted.split("."):
        value = getattr(value, part)
    return str(value)


def _http(rpc: Rpc, msg: Message) -> tuple[str, str, dict[str, Any] | None]:
    """(verb, path, JSON body) from the method's ``google.api.http`` rule."""
    rule = rpc.method.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    assert verb in ("get", "post", "put", "patch", "delete"), rpc
    template = getattr(rule, verb)
    used: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        field = match.group(1).split("=", 1)[0]
        used.add(field)
        return _field_value(msg, field)

    path = re.sub(r"\{([^}]+)\}", substitute, template)
    body: dict[str, Any] | None = None
    if rule.body == "*":
        body = json_format.MessageToDict(msg)
        for field in used:  # path parameters are not repeated in the body
            if "." not in field:
                body.pop(msg.DESCRIPTOR.fields_by_name[field].json_name, None)
    elif rule.body:
        body = json_format.MessageToDict(getattr(msg, rule.body))
    return verb.upper(), path, body


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPLANE_")}
    return subprocess.run([sys.executable, "-m", "modelplane.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Platform:
    data: Path
    base: int
    admin: str
    reader: str

    def grpc_address(self, service: str) -> str:
        return f"127.0.0.1:{self.base + DEFAULT_PORTS[service] - DEFAULT_PORTS['gateway']}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.base}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("security-platform")
    base = free_port_block()
    common = ("--data-dir", str(data), "--base-port", str(base))
    up = _cli("up", "--detach", "--timeout", "240", *common, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        created = _cli("keys", "create", "ana-reader", "--role", "reader",
                       "--data-dir", str(data), timeout=60)
        assert created.returncode == 0, created.stderr
        yield Platform(data, base, (data / "admin.key").read_text().strip(),
                       created.stdout.strip())
    finally:
        _cli("down", *common)


def _call(channels: dict[str, grpc.Channel], rpc: Rpc, request: Message, key: str) -> Any:
    channel = channels[rpc.service]
    out_class = _message_class(rpc.method.output_type)
    metadata = (("authorization", f"Bearer {key}"),)
    kind = (rpc.method.client_streaming, rpc.method.server_streaming)
    factory = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
               (True, False): channel.stream_unary, (True, True): channel.stream_stream}[kind]
    call = factory(rpc.path, request_serializer=type(request).SerializeToString,
                   response_deserializer=out_class.FromString)
    argument: Any = iter([request]) if rpc.method.client_streaming else request
    answer = call(argument, metadata=metadata, timeout=60)
    return list(answer) if rpc.method.server_streaming else answer


def _snapshot(channels: dict[str, grpc.Channel], admin: str) -> dict[str, str]:
    """Every list RPC that answers an empty request, as the admin sees it."""
    seen = {}
    for rpc in ALL_RPCS:
        if not rpc.method.name.startswith("List") or rpc.method.server_streaming \
                or role_for_method(rpc.method) != Role.READER:
            continue
        try:
            answer = _call(channels, rpc, _message_class(rpc.method.input_type)(), admin)
        except grpc.RpcError:
            continue  # needs arguments: not a cheap census
        seen[str(rpc)] = answer.SerializeToString(deterministic=True).hex()
    return seen


@pytest.fixture(scope="module")
def channels(platform: Platform) -> Iterator[dict[str, grpc.Channel]]:
    opened = {s: grpc.insecure_channel(platform.grpc_address(s)) for s in SERVICES}
    yield opened
    for ch in opened.values():
        ch.close()


@pytest.fixture(scope="module")
def seeded(platform: Platform, channels: dict[str, grpc.Channel]) -> dict[str, str]:
    """An entity and a model named SEEDED (so deletes and updates have a target), and
    the census of every list before any reader call."""
    from modelplane.featurestore.v1 import featurestore_pb2 as fs
    from modelplane.registry.v1 import registry_pb2 as reg

    by_name = {str(r): r for r in ALL_RPCS}
    _call(channels, by_name["featurestore.CreateEntity"], fs.CreateEntityRequest(
        entity=fs.Entity(name=SEEDED, join_key="probe_id")), platform.admin)
    _call(channels, by_name["registry.CreateModel"], reg.CreateModelRequest(
        model=reg.Model(name=SEEDED, description="kept")), platform.admin)
    census = _snapshot(channels, platform.admin)
    assert {"featurestore.ListEntities", "registry.ListModels"} <= set(census)
    return census


def test_the_contracts_have_the_mutating_rpcs_we_expect() -> None:
    # the generator found them: one per contract at least, the gate's AttachValidation among them
    assert {rpc.service for rpc in MUTATING} == set(SERVICES)
    assert "registry.AttachValidation" in {str(r) for r in MUTATING}
    assert len(MUTATING) >= 38  # at 84d1ebc; new ones join the generated tests below


@pytest.mark.parametrize("rpc", MUTATING, ids=str)
def test_reader_is_refused_over_grpc(platform: Platform, channels: dict[str, grpc.Channel],
                                     seeded: dict[str, str], rpc: Rpc) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _call(channels, rpc, _request(rpc), platform.reader)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value.details()
    assert "reader" in (err.value.details() or "")
    assert _snapshot(channels, platform.admin) == seeded


@pytest.mark.parametrize("rpc", MUTATING, ids=str)
def test_reader_is_refused_through_the_gateway(platform: Platform,
                                               channels: dict[str, grpc.Channel],
                                               seeded: dict[str, str], rpc: Rpc) -> None:
    verb, path, body = _http(rpc, _request(rpc))
    answer = httpx.request(verb, platform.gateway + path, json=body, timeout=60,
                           headers={"authorization": f"Bearer {platform.reader}"})
    assert answer.status_code == 403, f"{verb} {path}: {answer.status_code} {answer.text}"
    assert json.loads(answer.text)  # an error document, not an empty answer
    assert _snapshot(channels, platform.admin) == seeded


def test_the_reader_key_does_read(platform: Platform) -> None:
    """The refusals above are about the role, not a broken key."""
    answer = httpx.get(f"{platform.gateway}/v1/models/{SEEDED}", timeout=60,
                       headers={"authorization": f"Bearer {platform.reader}"})
    assert answer.status_code == 200, answer.text
