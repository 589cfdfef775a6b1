"""Event log, change detection and the resolve cache, on real SQLite and PostgreSQL.

A second ``RegistryHistory`` (its own engine) plays the ``mlflow server``
plugin writing from another process; nothing but the database connects them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from modelplane.kit.auth import Principal, Role
from modelplane.kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from modelplane.registry import identifiers as ids
from modelplane.registry.events import EventHub, make_probe
from modelplane.registry.history import PendingEvent, RegistryHistory
from modelplane.registry.model import (
    AliasChange,
    ChangeOrigin,
    EventType,
    ModelVersion,
    ResolvedModel,
    ValidationStatus,
    ValidationSummary,
)
from modelplane.registry.promotion import PromotionGate
from modelplane.registry.resolver import ModelUriResolver


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        make: Callable[[str], str] = request.getfixturevalue("make_postgres_database")
        return make("mp_registry_events")
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
async def hub_and_writer(database_url: str) -> AsyncIterator[tuple[EventHub, RegistryHistory]]:
    ours = RegistryHistory(database_url)
    ours.create_tables()
    theirs = RegistryHistory(database_url)  # "the mlflow server worker"
    hub = EventHub(ours, make_probe(ours), poll_seconds=3600)  # no help from polling
    await hub.start()
    try:
        yield hub, theirs
    finally:
        await hub.stop()
        ours.close()
        theirs.close()


def _move(writer: RegistryHistory, old: int, new: int, alias: str = "champion") -> AliasChange:
    return writer.record_alias_change(AliasChange(
        model_name="fraud", alias=alias, from_version=old, to_version=new, principal="ds-key",
        origin=ChangeOrigin.MLFLOW))


async def test_sync_sees_every_change_committed_by_another_process(
        hub_and_writer: tuple[EventHub, RegistryHistory]) -> None:
    hub, writer = hub_and_writer
    seen: list[int] = []
    hub.add_listener(lambda evs: seen.extend(e.sequence for e in evs))
    for i in range(1, 21):
        await asyncio.to_thread(_move, writer, i - 1, i)
        await hub.sync()  # right after the commit, no waiting
        assert len(seen) == i and hub.applied == seen[-1]
    assert seen == sorted(seen)
    await hub.sync()
    assert len(seen) == 20  # nothing applied twice


async def test_resolve_cache_drops_entries_on_foreign_changes(
        hub_and_writer: tuple[EventHub, RegistryHistory]) -> None:
    hub, writer = hub_and_writer
    truth = {"champion": 1}
    loads = []

    def load(ref: ids.ModelUri) -> ResolvedModel:
        loads.append(ref.canonical)
        v = truth[ref.alias]
        return ResolvedModel(ModelVersion("fraud", v), ref.alias, f"models:/fraud/{v}", "", "")

    resolver = ModelUriResolver(hub, load)
    for _ in range(5):
        assert (await resolver.resolve("models:/fraud@champion")).model_version.version == 1
    assert len(loads) == 1 and resolver.hits == 4
    for new in (2, 3, 4):
        truth["champion"] = new  # the store changes, then its event commits
        await asyncio.to_thread(_move, writer, new - 1, new)
        assert (await resolver.resolve("models:/fraud@champion")).model_version.version == new
    assert len(loads) == 4
    # Events of other models leave this model's entries alone.
    await asyncio.to_thread(writer.record_events, [PendingEvent(EventType.MODEL_CREATED, "other")])
    await resolver.resolve("models:/fraud@champion")
    assert len(loads) == 4


async def test_watch_bookmark_replay_and_live_events(
        hub_and_writer: tuple[EventHub, RegistryHistory]) -> None:
    hub, writer = hub_and_writer
    before = await asyncio.to_thread(_move, writer, 0, 1)
    await hub.sync()
    stream = hub.watch(["fraud"], [EventType.ALIAS_SET], after_sequence=0)
    started = await anext(stream)
    assert started.type is EventType.WATCH_STARTED and started.sequence == hub.applied
    replayed = await anext(stream)
    assert replayed.alias_change is not None and replayed.alias_change.id == before.id
    await asyncio.to_thread(writer.record_events, [PendingEvent(EventType.MODEL_CREATED, "fraud")])
    await asyncio.to_thread(_move, writer, 1, 2)
    await hub.sync()
    live = await asyncio.wait_for(anext(stream), 5)
    assert live.type is EventType.ALIAS_SET  # MODEL_CREATED filtered out
    assert live.alias_change is not None and live.alias_change.to_version == 2
    await stream.aclose()


async def test_alias_history_pages_newest_first(
        hub_and_writer: tuple[EventHub, RegistryHistory]) -> None:
    _, writer = hub_and_writer
    for i in range(1, 6):
        _move(writer, i - 1, i, alias="challenger" if i % 2 else "champion")
    newest = writer.list_alias_changes("fraud", None, 2)
    assert [c.to_version for c in newest] == [5, 4]
    older = writer.list_alias_changes("fraud", None, 10, before_id=newest[-1].id)
    assert [c.to_version for c in older] == [3, 2, 1]
    assert [c.to_version for c in writer.list_alias_changes("fraud", "champion", 10)] == [4, 2]
    latest = writer.latest_alias_changes("fraud")
    assert latest["challenger"].to_version == 5 and latest["champion"].to_version == 4


ADMIN, WRITER = Principal("admin-key", Role.ADMIN), Principal("ci-key", Role.WRITER)


def _report(status: ValidationStatus) -> ValidationSummary:
    return ValidationSummary(report_id="rep-1", status=status)


def test_gate_needs_pass_or_an_admin_override_with_reason() -> None:
    gate = PromotionGate(("champion",))
    args = {"model": "fraud", "version": 3, "alias": "champion"}
    assert not gate.decide(**args | {"alias": "shadow"}, validation=None, override_reason="",
                           principal=WRITER).protected
    with pytest.raises(FailedPrecondition) as no_report:
        gate.decide(**args, validation=None, override_reason="", principal=ADMIN)
    assert no_report.value.reason == "VALIDATION_REQUIRED"
    assert no_report.value.metadata["validation_status"] == "NONE"
    with pytest.raises(FailedPrecondition, match="status WARN"):
        gate.decide(**args, validation=_report(ValidationStatus.WARN), override_reason=" ",
                    principal=ADMIN)
    decision = gate.decide(**args, validation=_report(ValidationStatus.PASS), override_reason="",
                           principal=WRITER)
    assert decision.protected and not decision.override
    with pytest.raises(PermissionDenied):
        gate.decide(**args, validation=_report(ValidationStatus.FAIL), override_reason="INC-1",
                    principal=WRITER)
    assert gate.decide(**args, validation=_report(ValidationStatus.FAIL), override_reason="INC-1",
                       principal=ADMIN).override
    with pytest.raises(FailedPrecondition):  # REST: no override at all
        gate.decide(**args, validation=None, override_reason="INC-1", principal=ADMIN,
                    allow_override=False)


@pytest.mark.parametrize("uri,expected", [
    ("models:/fraud@champion", ids.ModelUri("fraud", alias="champion")),
    ("models:/fraud/12", ids.ModelUri("fraud", version=12)),
    ("models:/team.fraud-v2@challenger", ids.ModelUri("team.fraud-v2", alias="challenger")),
])
def test_model_uris_parse(uri: str, expected: ids.ModelUri) -> None:
    assert ids.model_uri(uri) == expected


@pytest.mark.parametrize("uri,reason", [
    ("", "MODEL_URI_MISSING"), ("runs:/abc/model", "MODEL_URI_INVALID"),
    ("models:/fraud", "MODEL_URI_INVALID"), ("models:/fraud/0", "VERSION_INVALID"),
    ("models:/fraud@latest", "ALIAS_RESERVED"), ("models:/fr'aud@x", "MODEL_NAME_INVALID"),
    ("models:/@champion", "MODEL_NAME_MISSING"),
])
def test_bad_model_uris_name_the_field(uri: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ids.model_uri(uri)
    assert err.value.reason == reason and err.value.field_violations[0].field == "uri"
