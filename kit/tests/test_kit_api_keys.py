"""The keys file as running services see it: expiry, revocation and reloads without a
restart, including changes that land within one mtime tick."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelplane.kit.auth import (
    ApiKeyStore,
    Role,
    add_key,
    list_keys,
    remove_key,
)
from modelplane.kit.errors import NotFound, Unauthenticated


def test_an_expired_key_is_refused_saying_it_expired(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    old = add_key(path, "ana", Role.WRITER, expires=datetime.now(UTC) - timedelta(seconds=1))
    fresh = add_key(path, "bo", Role.WRITER, expires=datetime.now(UTC) + timedelta(days=1))
    store = ApiKeyStore(path)
    with pytest.raises(Unauthenticated) as err:
        store.authenticate(old)
    assert err.value.reason == "API_KEY_EXPIRED"
    assert "expired" in err.value.message and "'ana'" in err.value.message
    assert store.lookup(old) is None
    assert store.authenticate(fresh).name == "bo"
    with pytest.raises(Unauthenticated) as unknown:
        store.authenticate("mp_nobody")
    assert unknown.value.reason == "API_KEY_INVALID"


def test_revoke_and_create_within_one_mtime_tick_are_both_seen(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    ana = add_key(path, "ana", Role.READER)
    store = ApiKeyStore(path)
    assert store.lookup(ana) is not None
    before = path.stat()
    remove_key(path, "ana")
    bo = add_key(path, "bo", Role.READER)
    # Pin the file's times to those before both changes: the store must not rely on mtime.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.lookup(ana) is None
    assert store.lookup(bo) is not None


def test_the_keys_file_is_rewritten_atomically_and_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    add_key(path, "ana", Role.READER)
    inode = path.stat().st_ino
    add_key(path, "validator", Role.WRITER, service=True)
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    rows = json.loads(path.read_text())["keys"]
    assert [(r["name"], r.get("service", False)) for r in rows] == [
        ("ana", False), ("validator", True)]


def test_listing_shows_names_roles_kinds_and_expiry_never_secrets(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    add_key(path, "ana", Role.WRITER, expires=until)
    add_key(path, "serving", Role.WRITER, service=True)
    entries = list_keys(path)
    assert [(e.name, e.role, e.service, e.expires) for e in entries] == [
        ("ana", Role.WRITER, False, until), ("serving", Role.WRITER, True, None)]


def test_revoking_an_unknown_name_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    add_key(path, "ana", Role.READER)
    before = path.read_bytes()
    with pytest.raises(NotFound):
        remove_key(path, "bo")
    assert path.read_bytes() == before
