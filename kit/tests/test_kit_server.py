"""The kit's server: auth by role, error mapping to google.rpc.Status, health, streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

import grpc
import pytest
from google.protobuf import wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelplane.kit.auth import Role, add_key, current_principal
from modelplane.kit.clients import channel
from modelplane.kit.errors import (
    FieldViolation,
    InvalidArgument,
    ModelplaneError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from modelplane.kit.server import Servicer, ServiceSpec, running
from modelplane.kit.settings import ServiceSettings
from modelplane.kit.status import raise_from_rpc_error
from modelplane.kit.telemetry import setup_tracing

SVC = "test.kit.v1.Echo"
READ, WRITE, STREAM, BROKEN = (f"/{SVC}/Read", f"/{SVC}/Write", f"/{SVC}/Count",
                               f"/{SVC}/Broken")
S = wrappers_pb2.StringValue


class Echo:
    async def read(self, request: S, context: grpc.aio.ServicerContext) -> S:
        if request.value == "missing":
            raise NotFound("model 'missing' not found", reason="MODEL_NOT_FOUND",
                           metadata={"model": "missing"})
        if request.value == "bad":
            raise InvalidArgument("bad request", field_violations=[
                FieldViolation("dataset.feature_refs[2]", "unknown feature view 'x'")])
        with trace.get_tracer("kittest").start_as_current_span("echo.read"):
            return S(value=f"{current_principal().name}:{request.value}")

    async def write(self, request: S, context: grpc.aio.ServicerContext) -> S:
        return S(value=f"wrote {request.value} as {current_principal().role.name}")

    async def count(self, request: S, context: grpc.aio.ServicerContext):
        for i in range(int(request.value)):
            if i == 2:
                raise NotFound("stream ran out", reason="RAN_OUT")
            yield S(value=str(i))

    async def broken(self, request: S, context: grpc.aio.ServicerContext) -> S:
        raise RuntimeError("secret connection string postgres://u:pw@db")


def _add(impl: Echo, server: grpc.aio.Server) -> None:
    def unary(fn):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=S.FromString, response_serializer=S.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SVC, {
        "Read": unary(impl.read),
        "Write": unary(impl.write),
        "Broken": unary(impl.broken),
        "Count": grpc.unary_stream_rpc_method_handler(
            impl.count, request_deserializer=S.FromString,
            response_serializer=S.SerializeToString),
    }),))


def _spec(started: list[str] | None = None) -> ServiceSpec:
    async def on_start() -> None:
        if started is not None:
            started.append("started")

    return ServiceSpec(
        name="kittest", servicers=[Servicer(_add, Echo(), SVC)], on_start=on_start,
        method_access={READ: Role.READER, STREAM: Role.READER, BROKEN: Role.READER,
                       WRITE: Role.WRITER})


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "api_keys.json"
    return {
        "path": str(path),
        "reader": add_key(path, "ana", Role.READER),
        "writer": add_key(path, "wes", Role.WRITER),
    }


def _settings(tmp_path: Path, keys: dict[str, str], auth: bool = True) -> ServiceSettings:
    return ServiceSettings.from_env("kittest", {
        "MODELPLANE_DATA_DIR": str(tmp_path), "MODELPLANE_KITTEST_ADDR": "127.0.0.1:0",
        "MODELPLANE_API_KEYS_FILE": keys["path"], "MODELPLANE_AUTH": "on" if auth else "off",
        "MODELPLANE_GRACE_SECONDS": "0.5"})


async def _call(address: str, method: str, value: str, key: str | None) -> S:
    async with channel(address, api_key=key, tracing=False) as ch:
        return await ch.unary_unary(method, request_serializer=S.SerializeToString,
                                    response_deserializer=S.FromString)(S(value=value))


def _error(exc_info: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> ModelplaneError:
    with pytest.raises(ModelplaneError) as mapped:
        raise_from_rpc_error(exc_info.value)
    return mapped.value


async def test_keys_file_is_private(keys: dict[str, str]) -> None:
    mode = stat.S_IMODE(os.stat(keys["path"]).st_mode)
    assert mode == 0o600
    assert keys["reader"] not in Path(keys["path"]).read_text()


async def test_roles_are_enforced_per_method(tmp_path: Path, keys: dict[str, str]) -> None:
    async with running(_spec(), _settings(tmp_path, keys)) as svc:
        assert (await _call(svc.address, READ, "x", keys["reader"])).value == "ana:x"
        assert (await _call(svc.address, WRITE, "y", keys["writer"])).value == "wrote y as WRITER"

        with pytest.raises(grpc.aio.AioRpcError) as no_key:
            await _call(svc.address, READ, "x", None)
        assert no_key.value.code() == grpc.StatusCode.UNAUTHENTICATED
        err = _error(no_key)
        assert isinstance(err, Unauthenticated) and err.reason == "API_KEY_MISSING"

        with pytest.raises(grpc.aio.AioRpcError) as wrong_key:
            await _call(svc.address, READ, "x", "mp_not_a_key")
        assert _error(wrong_key).reason == "API_KEY_INVALID"

        with pytest.raises(grpc.aio.AioRpcError) as low_role:
            await _call(svc.address, WRITE, "x", keys["reader"])
        assert low_role.value.code() == grpc.StatusCode.PERMISSION_DENIED
        err = _error(low_role)
        assert isinstance(err, PermissionDenied)
        assert err.metadata["required_role"] == "writer"


async def test_health_needs_no_key_and_reports_serving_after_start(
        tmp_path: Path, keys: dict[str, str]) -> None:
    started: list[str] = []
    async with running(_spec(started), _settings(tmp_path, keys)) as svc:
        assert started == ["started"]
        async with grpc.aio.insecure_channel(svc.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for name in ("", SVC):
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=name))
                assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_domain_errors_become_rich_status(tmp_path: Path, keys: dict[str, str]) -> None:
    async with running(_spec(), _settings(tmp_path, keys)) as svc:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await _call(svc.address, READ, "missing", keys["reader"])
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        err = _error(missing)
        assert isinstance(err, NotFound)
        assert (err.reason, err.metadata) == ("MODEL_NOT_FOUND", {"model": "missing"})

        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await _call(svc.address, READ, "bad", keys["reader"])
        err = _error(bad)
        assert isinstance(err, InvalidArgument)
        assert err.field_violations == (
            FieldViolation("dataset.feature_refs[2]", "unknown feature view 'x'"),)


async def test_unexpected_exception_is_internal_without_leaking(
        tmp_path: Path, keys: dict[str, str]) -> None:
    async with running(_spec(), _settings(tmp_path, keys)) as svc:
        with pytest.raises(grpc.aio.AioRpcError) as broken:
            await _call(svc.address, BROKEN, "x", keys["reader"])
        assert broken.value.code() == grpc.StatusCode.INTERNAL
        assert "postgres://" not in (broken.value.details() or "")
        assert "reference" in _error(broken).metadata
        # the server is still up
        assert (await _call(svc.address, READ, "after", keys["reader"])).value == "ana:after"


async def test_stream_error_mid_stream_keeps_items_and_status(
        tmp_path: Path, keys: dict[str, str]) -> None:
    async with running(_spec(), _settings(tmp_path, keys)) as svc, \
            channel(svc.address, api_key=keys["reader"], tracing=False) as ch:
        call = ch.unary_stream(STREAM, request_serializer=S.SerializeToString,
                               response_deserializer=S.FromString)(S(value="5"))
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async for item in call:
                got.append(item.value)
        assert got == ["0", "1"]
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        assert _error(exc).reason == "RAN_OUT"


async def test_auth_off_lets_anonymous_admin_through(tmp_path: Path, keys: dict[str, str]) -> None:
    async with running(_spec(), _settings(tmp_path, keys, auth=False)) as svc:
        assert (await _call(svc.address, WRITE, "z", None)).value == "wrote z as ADMIN"


async def test_in_flight_call_finishes_during_graceful_stop(
        tmp_path: Path, keys: dict[str, str]) -> None:
    entered = asyncio.Event()

    class Slow(Echo):
        async def read(self, request: S, context: grpc.aio.ServicerContext) -> S:
            entered.set()
            await asyncio.sleep(0.3)  # the call's own work, still going when the stop begins
            return S(value="done")

    spec = ServiceSpec(name="kittest", servicers=[Servicer(_add, Slow(), SVC)],
                       method_access={READ: Role.READER})
    settings = _settings(tmp_path, keys)
    async with running(spec, settings) as svc:
        call = asyncio.create_task(_call(svc.address, READ, "x", keys["reader"]))
        await asyncio.wait_for(entered.wait(), 10)  # the call is in the handler: stop now
    assert (await call).value == "done"


def test_settings_read_from_environment(tmp_path: Path) -> None:
    (tmp_path / "serving.key").write_text("mp_serving\n")
    s = ServiceSettings.from_env("serving", {
        "MODELPLANE_DATA_DIR": str(tmp_path), "MODELPLANE_REGISTRY_TARGET": "reg:9",
        "MODELPLANE_API_KEY_FILE": str(tmp_path / "serving.key"),
        "MODELPLANE_SERVING_DATABASE_URL": "postgresql://x/y", "MODELPLANE_AUTH": "off"})
    assert s.listen == "127.0.0.1:7104"
    assert s.target("registry") == "reg:9"
    assert s.target("observability") == "127.0.0.1:7105"
    assert s.env("DATABASE_URL") == "postgresql://x/y"
    assert s.api_key == "mp_serving"
    assert not s.auth_enabled
    assert s.data_dir == tmp_path / "serving" and s.data_dir.is_dir()


async def test_every_call_is_counted_by_method_and_status_code_with_its_duration(
        tmp_path: Path, keys: dict[str, str]) -> None:
    from prometheus_client import REGISTRY, generate_latest

    def count(method: str, code: str) -> float:
        value = REGISTRY.get_sample_value("modelplane_rpc_requests_total", {
            "service": "kittest", "method": method.lstrip("/"), "code": code})
        return value or 0.0

    def observed(method: str) -> float:
        value = REGISTRY.get_sample_value("modelplane_rpc_duration_seconds_count", {
            "service": "kittest", "method": method.lstrip("/")})
        return value or 0.0

    before = {(m, c): count(m, c) for m, c in ((READ, "OK"), (READ, "NOT_FOUND"),
                                               (READ, "UNAUTHENTICATED"), (BROKEN, "INTERNAL"),
                                               (STREAM, "NOT_FOUND"))}
    durations = observed(READ)
    async with running(_spec(), _settings(tmp_path, keys)) as svc:
        for value in ("a", "b", "c"):
            await _call(svc.address, READ, value, keys["reader"])
        for method, value, key in ((READ, "missing", keys["reader"]), (READ, "x", None),
                                   (BROKEN, "x", keys["reader"])):
            with pytest.raises(grpc.aio.AioRpcError):
                await _call(svc.address, method, value, key)
        async with channel(svc.address, api_key=keys["reader"], tracing=False) as ch:
            call = ch.unary_stream(STREAM, request_serializer=S.SerializeToString,
                                   response_deserializer=S.FromString)(S(value="5"))
            with pytest.raises(grpc.aio.AioRpcError):
                async for _ in call:
                    pass
    assert count(READ, "OK") - before[(READ, "OK")] == 3
    assert count(READ, "NOT_FOUND") - before[(READ, "NOT_FOUND")] == 1
    assert count(READ, "UNAUTHENTICATED") - before[(READ, "UNAUTHENTICATED")] == 1
    assert count(BROKEN, "INTERNAL") - before[(BROKEN, "INTERNAL")] == 1
    assert count(STREAM, "NOT_FOUND") - before[(STREAM, "NOT_FOUND")] == 1
    assert observed(READ) - durations == 5
    assert REGISTRY.get_sample_value("modelplane_rpc_in_flight", {"service": "kittest"}) == 0
    assert b"modelplane_rpc_duration_seconds_bucket" in generate_latest(REGISTRY)


def test_a_service_never_picks_up_the_admin_key_from_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "admin.key").write_text("mp_admin\n")
    s = ServiceSettings.from_env("serving", {"MODELPLANE_DATA_DIR": str(tmp_path)})
    assert s.api_key is None


_SLOW_START = """
import asyncio, sys
from modelplane.kit.server import ServiceSpec, serve
from modelplane.kit.settings import ServiceSettings

async def on_start():
    print("on_start entered", flush=True)
    await asyncio.sleep(600)  # a database or a child server that takes its time

settings = ServiceSettings.from_env("kittest", {
    "MODELPLANE_DATA_DIR": sys.argv[1], "MODELPLANE_KITTEST_ADDR": "127.0.0.1:0",
    "MODELPLANE_AUTH": "off", "MODELPLANE_GRACE_SECONDS": "0.5"})
asyncio.run(serve(ServiceSpec(name="kittest", servicers=[], on_start=on_start), settings))
print("exited", flush=True)
"""


def test_sigterm_while_starting_abandons_the_start_at_once(tmp_path: Path) -> None:
    """A supervisor stopping a part that is still starting is answered in seconds, not
    after the start (or the supervisor's SIGKILL) ends it."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", _SLOW_START, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "on_start entered" in line:
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "start abandoned" in out and "exited" in out
    assert elapsed < 10, elapsed


async def test_each_call_is_a_server_span_continuing_the_callers_trace(
        tmp_path: Path, keys: dict[str, str]) -> None:
    """The guard's span: the caller's W3C trace continued, OpenTelemetry's RPC attributes,
    the handler's own spans beneath it, and an error status for the server's failures
    only (a caller's NOT_FOUND is not the server's error)."""
    exporter = InMemorySpanExporter()
    setup_tracing("kittest", [SimpleSpanProcessor(exporter)])
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced = (("traceparent", f"00-{trace_id}-{parent_id}-01"),)

    async def call(method: str, value: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        async with channel(svc.address, api_key=keys["reader"], tracing=False) as ch:
            stub = ch.unary_unary(method, request_serializer=S.SerializeToString,
                                  response_deserializer=S.FromString)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub(S(value=value), metadata=metadata)

    async with running(_spec(), _settings(tmp_path, keys)) as svc:
        await call(READ, "x", traced)
        await call(READ, "missing")
        await call(BROKEN, "x", traced)
    spans = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER
             and s.name.startswith(f"/{SVC}/")]
    read_ok, read_missing, broken = spans
    assert read_ok.name == READ
    assert f"{read_ok.context.trace_id:032x}" == trace_id
    assert read_ok.parent is not None and f"{read_ok.parent.span_id:016x}" == parent_id
    assert dict(read_ok.attributes or {}) | {"net.peer.port": "-"} == {
        "rpc.system": "grpc", "rpc.service": SVC, "rpc.method": "Read",
        "rpc.grpc.status_code": 0, "net.peer.ip": "127.0.0.1", "net.peer.port": "-",
        "net.peer.name": "localhost", "rpc.user_agent": read_ok.attributes["rpc.user_agent"]}
    child = next(s for s in exporter.get_finished_spans() if s.name == "echo.read")
    assert child.parent is not None and child.parent.span_id == read_ok.context.span_id

    # no traceparent: a new trace; the caller's error leaves the status unset
    assert f"{read_missing.context.trace_id:032x}" != trace_id
    assert read_missing.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert read_missing.status.status_code == StatusCode.UNSET

    assert f"{broken.context.trace_id:032x}" == trace_id
    assert broken.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert broken.status.status_code == StatusCode.ERROR
    assert [e.name for e in broken.events] == ["exception"]
    assert broken.events[0].attributes["exception.type"] == "RuntimeError"
