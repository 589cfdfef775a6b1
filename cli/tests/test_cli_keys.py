"""`modelplane keys` and the per-service identities `modelplane up` provisions, without a
running platform (tests/test_platform_cli.py checks them on one)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelplane.cli import keys
from modelplane.cli.main import main
from modelplane.kit.auth import ApiKeyStore, Role, add_key, list_keys


def test_create_prints_the_key_once_and_stores_only_its_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "ana", "--role", "writer", "--expires", "30d",
                 "--data-dir", str(tmp_path)]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("mp_")
    keys_file = tmp_path / "api_keys.json"
    assert key not in keys_file.read_text()
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    principal = ApiKeyStore(keys_file).authenticate(key)
    assert (principal.name, principal.role, principal.service) == ("ana", Role.WRITER, False)
    (entry,) = list_keys(keys_file)
    assert entry.expires is not None
    assert timedelta(days=29) < entry.expires - datetime.now(UTC) <= timedelta(days=30)


def test_list_shows_names_roles_kinds_and_expiry_but_no_key_or_hash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_file = tmp_path / "api_keys.json"
    person = add_key(keys_file, "ana", Role.READER,
                     expires=datetime(2020, 1, 1, tzinfo=UTC))
    service = add_key(keys_file, "serving", Role.WRITER, service=True)
    assert main(["keys", "list", "--json", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == [
        {"name": "ana", "role": "reader", "kind": "person",
         "expires": "2020-01-01T00:00:00+00:00", "expired": True},
        {"name": "serving", "role": "writer", "kind": "service", "expires": None,
         "expired": False}]
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "(expired)" in table and "service" in table
    hashes = [row["sha256"] for row in json.loads(keys_file.read_text())["keys"]]
    for secret in (person, service, *hashes):
        assert secret not in out and secret not in table


@pytest.mark.parametrize("name", [*keys.SERVICE_ROLES, "admin"])
def test_a_person_cannot_take_a_service_name_or_admin(
        tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    keys_file = tmp_path / "api_keys.json"
    add_key(keys_file, "ana", Role.READER)
    before = keys_file.read_bytes()
    assert main(["keys", "create", name, "--role", "reader",
                 "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no key printed
    assert repr(name) in captured.err
    assert keys_file.read_bytes() == before


def test_create_refuses_an_existing_name_and_a_past_expiry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_file = tmp_path / "api_keys.json"
    add_key(keys_file, "ana", Role.READER)
    before = keys_file.read_bytes()
    assert main(["keys", "create", "ana", "--role", "admin", "--data-dir", str(tmp_path)]) == 2
    assert main(["keys", "create", "bo", "--role", "reader", "--expires", "2001-01-01",
                 "--data-dir", str(tmp_path)]) == 2
    assert main(["keys", "create", "bo", "--role", "reader", "--expires", "soon",
                 "--data-dir", str(tmp_path)]) == 2
    assert "revoke" in capsys.readouterr().err
    assert keys_file.read_bytes() == before


def test_revoke_removes_the_key_for_a_running_store_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_file = tmp_path / "api_keys.json"
    ana = add_key(keys_file, "ana", Role.WRITER)
    bo = add_key(keys_file, "bo", Role.WRITER)
    store = ApiKeyStore(keys_file)
    assert store.lookup(ana) is not None
    assert main(["keys", "revoke", "ana", "--data-dir", str(tmp_path)]) == 0
    assert store.lookup(ana) is None and store.lookup(bo) is not None
    assert main(["keys", "revoke", "ana", "--data-dir", str(tmp_path)]) == 2
    assert "no API key named 'ana'" in capsys.readouterr().err


def test_each_service_gets_its_own_least_role_identity_kept_across_restarts(
        tmp_path: Path) -> None:
    keys_file = tmp_path / "api_keys.json"
    legacy = add_key(keys_file, "platform-services", Role.ADMIN)
    (tmp_path / "services.key").write_text(legacy + "\n")
    files = keys.provision_service_keys(tmp_path, keys_file)
    assert set(files) == {"featurestore", "registry", "validator", "serving",
                          "observability", "gateway"}
    store = ApiKeyStore(keys_file)
    first = {}
    for name, path in files.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        first[name] = path.read_text().strip()
        principal = store.authenticate(first[name])
        assert (principal.name, principal.service) == (name, True)
        assert principal.role < Role.ADMIN
    assert store.authenticate(first["validator"]).role == Role.WRITER
    assert store.authenticate(first["serving"]).role == Role.WRITER
    assert store.authenticate(first["featurestore"]).role == Role.READER
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    # the shared admin key of earlier versions is gone
    assert store.lookup(legacy) is None and not (tmp_path / "services.key").exists()
    again = keys.provision_service_keys(tmp_path, keys_file)
    assert {n: p.read_text().strip() for n, p in again.items()} == first


def test_a_service_environment_carries_only_its_own_key_file(tmp_path: Path) -> None:
    env = keys.service_environment(
        {"MODELPLANE_API_KEY": "mp_admin", "MLFLOW_TRACKING_TOKEN": "mp_admin", "PATH": "/bin"},
        tmp_path / "serving.key")
    assert env == {"PATH": "/bin", "MODELPLANE_API_KEY_FILE": str(tmp_path / "serving.key")}
