"""API keys of the local platform: one identity per service, and keys for people.

Every service, and the gateway, calls its peers with a key of its own, named
after it, marked ``service: true`` in the keys file and holding the least role
its daily calls need (none is admin; see :data:`SERVICE_ROLES`). ``modelplane
up`` provisions them in ``<data dir>/keys/<service>.key`` (0600, in a 0700
directory) and hands each process only its own file through
``MODELPLANE_API_KEY_FILE``: never argv, never the admin key.

People get keys with ``modelplane keys``::

    modelplane keys create NAME --role reader|writer|admin [--expires 30d]
    modelplane keys list
    modelplane keys revoke NAME

The key is printed once and kept nowhere but in the caller's hands (the file
holds its SHA-256). Running services reload the keys file when it changes, so a
created, revoked or expired key takes effect without a restart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelplane.kit.auth import (
    ApiKeyStore,
    KeyEntry,
    Role,
    add_key,
    list_keys,
    remove_key,
)
from modelplane.kit.errors import ModelplaneError

#: The least role each service's own calls to its peers need (by contract role):
#: featurestore, observability: call no peer (reader: nothing to write anywhere);
#: registry: reads the validator's reports to confirm a validation (reader);
#: validator: ResolveModelUri, GetDataset/ReadDataset (read), AttachValidation,
#:   SetBaseline (write) -> writer;
#: serving: ResolveModelUri, WatchModelEvents, GetOnlineFeatures, ReadDataset (read),
#:   LogRecords (write) -> writer;
#: gateway: forwards each caller's own key; its identity is never needed for more
#:   than reading.
SERVICE_ROLES: Mapping[str, Role] = {
    "featurestore": Role.READER,
    "registry": Role.READER,
    "validator": Role.WRITER,
    "serving": Role.WRITER,
    "observability": Role.READER,
    "gateway": Role.READER,
}
#: the admin key's name, which ``modelplane up`` owns (``admin.key``)
ADMIN_NAME = "admin"
#: the single admin key every process shared before per-service identities
_LEGACY_SHARED = "platform-services"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700: it holds keys, databases and logs."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def service_key_file(data_dir: Path, service: str) -> Path:
    return data_dir / "keys" / f"{service}.key"


def provision_service_keys(data_dir: Path, keys_file: Path,
                           services: Sequence[str] = tuple(SERVICE_ROLES)) -> dict[str, Path]:
    """Each service's own key file, created or repaired so that the keys file holds
    exactly that key under the service's name, ``service: true``, with its role.
    A key already in place is kept (restarts do not rotate identities). The shared admin
    key of earlier versions is removed."""
    make_private_dir(data_dir / "keys")
    store = ApiKeyStore(keys_file)
    files: dict[str, Path] = {}
    for service in services:
        role = SERVICE_ROLES[service]
        path = service_key_file(data_dir, service)
        key = path.read_text().strip() if path.is_file() else ""
        known = store.lookup(key) if key else None
        if known is None or (known.name, known.role, known.service) != (service, role, True):
            key = add_key(keys_file, service, role, service=True)
            _write_private(path, key + "\n")
        files[service] = path
    if any(e.name == _LEGACY_SHARED for e in list_keys(keys_file)):
        remove_key(keys_file, _LEGACY_SHARED)
    (data_dir / "services.key").unlink(missing_ok=True)
    return files


def service_environment(env: Mapping[str, str], key_file: Path) -> dict[str, str]:
    """``env`` for one service's process: its own key file and no other key."""
    own = {k: v for k, v in env.items()
           if k not in ("MODELPLANE_API_KEY", "MLFLOW_TRACKING_TOKEN")}
    own["MODELPLANE_API_KEY_FILE"] = str(key_file)
    return own


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``45s`` from now, or an ISO 8601 time."""
    match = _DURATION.match(text.strip())
    now = now or datetime.now(UTC)
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise ValueError(f"--expires {text!r}: the duration must be positive")
        return now + timedelta(**{_UNITS[match.group(2)]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--expires {text!r}: expected a duration such as 30d, 12h, 90m, 2w "
                         "or an ISO 8601 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        raise ValueError(f"--expires {text!r} is in the past")
    return when


def create_person_key(keys_file: Path, name: str, role: Role,
                      expires: datetime | None = None) -> str:
    """A new key for a person (or a team's tool); refuses service names, ``admin`` and
    names already in use (revoke first: a key is never replaced silently)."""
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r}: use letters, digits and . _ @ - (at most 64)")
    if name in SERVICE_ROLES:
        raise ValueError(f"{name!r} is a service's identity; a person's key cannot take "
                         "that name (services are trusted by name)")
    if name == ADMIN_NAME:
        raise ValueError("'admin' is the platform's own admin key (admin.key); "
                         "pick another name")
    if any(e.name == name for e in list_keys(keys_file)):
        raise ValueError(f"a key named {name!r} exists; `modelplane keys revoke {name}` first")
    return add_key(keys_file, name, role, expires=expires)


def _describe(entry: KeyEntry, now: datetime) -> dict[str, object]:
    return {"name": entry.name, "role": entry.role.name.lower(),
            "kind": "service" if entry.service else "person",
            "expires": entry.expires.isoformat() if entry.expires else None,
            "expired": entry.expired(now)}


def cmd_keys(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    keys_file = Path(args.keys_file).expanduser().resolve() if args.keys_file \
        else data_dir / "api_keys.json"
    try:
        if args.keys_command == "create":
            if not keys_file.parent.exists():
                make_private_dir(keys_file.parent)
            expires = parse_expiry(args.expires) if args.expires else None
            key = create_person_key(keys_file, args.name, Role.parse(args.role), expires)
            print(key)
            until = f", expires {expires.isoformat(timespec='seconds')}" if expires else ""
            print(f"created key {args.name!r} (role {args.role.lower()}{until}); it is shown "
                  "only now: send it as 'authorization: Bearer <key>'", file=sys.stderr)
            return 0
        if args.keys_command == "revoke":
            entry = remove_key(keys_file, args.name)
            service = (", a service identity: `modelplane up` makes a new one"
                       if entry.service else "")
            print(f"revoked key {entry.name!r} ({entry.role.name.lower()}{service}); "
                  "running services refuse it from now on")
            return 0
        now = datetime.now(UTC)
        rows = [_describe(e, now) for e in list_keys(keys_file)]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'name':<24} {'role':<7} {'kind':<8} expires")
        for row in rows:
            expiry = row["expires"] or "never"
            if row["expired"]:
                expiry = f"{expiry} (expired)"
            print(f"{row['name']:<24} {row['role']:<7} {row['kind']:<8} {expiry}")
        return 0
    except (ValueError, ModelplaneError) as exc:
        message = exc.message if isinstance(exc, ModelplaneError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="API keys for people: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=".modelplane",
                       help="the platform's data directory (default ./.modelplane)")
        p.add_argument("--keys-file", default=None,
                       help="the keys file, if not <data dir>/api_keys.json")

    create = keys_sub.add_parser("create", help="make a key and print it once")
    common(create)
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["reader", "writer", "admin"])
    create.add_argument("--expires", default=None,
                        help="when it stops working: 30d, 12h, 2w ... or an ISO 8601 time")
    listing = keys_sub.add_parser("list", help="names, roles, kinds and expiry (never keys)")
    common(listing)
    listing.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="delete a key; services refuse it at once")
    common(revoke)
    revoke.add_argument("name")
