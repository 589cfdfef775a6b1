"""The storage policy: which files and object-store keys a caller may name.

Every request field that names a location on the server's side (a parquet to
import, a dataset to validate, a batch job's input and output, a Bento export,
a feature view's source, a feature repo directory) goes through one
:class:`StoragePolicy` before anything opens, creates or lists it.

The rules:

- Local paths and ``file://`` URIs only under the configured roots. By default
  these are the service's ``<data_dir>/imports`` and ``<data_dir>/exports``;
  ``MODELPLANE_STORAGE_ROOTS`` (every service) and
  ``MODELPLANE_<SERVICE>_STORAGE_ROOTS`` (one service) add ``:``-separated
  directories. A path is resolved (``..``, symlinks) *before* it is compared
  with the roots, so neither a ``..`` nor a symlink inside a root leads out of
  it. A relative path is taken under the imports root for reads and under the
  exports root for writes. Glob characters are refused unless the caller
  (a feature view source) asks for them, and then only in the last component.
- Object stores (``s3://``, ``gs://``, ``gcs://``, ``abfs://``, ``az://``) only
  in buckets named by ``MODELPLANE_STORAGE_BUCKETS`` /
  ``MODELPLANE_<SERVICE>_STORAGE_BUCKETS`` (comma-separated ``s3://bucket`` or
  ``s3://bucket/prefix``). None are allowed by default.
- Anything else (``http://``, ``ftp://``, a path outside the roots, a bucket
  not listed) is ``PERMISSION_DENIED``, and the message names the setting that
  would allow it.
- Outputs never overwrite: :meth:`StoragePolicy.writable` refuses an existing
  file with ``ALREADY_EXISTS`` unless the API has an explicit overwrite flag.

What a caller sees of a refusal is the location as the caller wrote it, the
field and the setting: never a resolved server path, never the content or the
column list of a file (see :func:`read_parquet`).

No grpc here; pyarrow is imported only by :func:`read_parquet`, by the services
that read tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from modelplane.kit.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from modelplane.kit.settings import ServiceSettings

OBJECT_STORE_SCHEMES = frozenset({"s3", "gs", "gcs", "abfs", "abfss", "az"})
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class Location:
    """A location the policy allowed: the caller's spelling and where it really is."""

    #: as the caller wrote it (the only form shown back to callers)
    uri: str
    #: the resolved local path (inside a root); None for an object-store key
    path: Path | None = None

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def target(self) -> str:
        """What a reader or writer opens: the resolved path, or the object-store URI."""
        return str(self.path) if self.path is not None else self.uri


class StoragePolicy:
    """Which locations callers may name on this server (see the module docstring)."""

    def __init__(self, roots: Sequence[Path], buckets: Iterable[str] = (), *,
                 roots_setting: str = "MODELPLANE_STORAGE_ROOTS",
                 buckets_setting: str = "MODELPLANE_STORAGE_BUCKETS") -> None:
        if not roots:
            raise ValueError("a storage policy needs at least one root")
        self.roots: tuple[Path, ...] = tuple(Path(r).expanduser().resolve() for r in roots)
        self.buckets: tuple[str, ...] = tuple(_bucket_prefix(b) for b in buckets if b.strip())
        self.roots_setting = roots_setting
        self.buckets_setting = buckets_setting

    @property
    def imports(self) -> Path:
        """Where relative read paths are taken from (the first root)."""
        return self.roots[0]

    @property
    def exports(self) -> Path:
        """Where relative write paths and server-chosen outputs go (the second root, if any)."""
        return self.roots[1] if len(self.roots) > 1 else self.roots[0]

    @classmethod
    def for_service(cls, settings: ServiceSettings, extra_roots: Iterable[Path] = ()
                    ) -> StoragePolicy:
        """``<data_dir>/imports`` and ``/exports`` (created), plus the configured roots and
        buckets."""
        svc = settings.service.upper()
        data_dir = settings.data_dir
        defaults = [data_dir / "imports", data_dir / "exports"]
        for d in defaults:
            d.mkdir(parents=True, exist_ok=True)
        env = settings.environ
        configured = [Path(p)
                      for name in ("MODELPLANE_STORAGE_ROOTS", f"MODELPLANE_{svc}_STORAGE_ROOTS")
                      for p in (env.get(name) or "").split(os.pathsep) if p.strip()]
        buckets = [b for name in ("MODELPLANE_STORAGE_BUCKETS", f"MODELPLANE_{svc}_STORAGE_BUCKETS")
                   for b in (env.get(name) or "").split(",") if b.strip()]
        return cls([*defaults, *extra_roots, *configured], buckets,
                   roots_setting=f"MODELPLANE_{svc}_STORAGE_ROOTS",
                   buckets_setting=f"MODELPLANE_{svc}_STORAGE_BUCKETS")

    # ------------------------------------------------------------------ checks

    def locate(self, uri: str, field: str, *, base: Path | None = None,
               allow_glob: bool = False) -> Location:
        """Where ``uri`` is, if callers may name it at all; PERMISSION_DENIED otherwise."""
        if not uri:
            raise InvalidArgument(f"{field} is required", reason="LOCATION_REQUIRED",
                                  field_violations=[FieldViolation(field, "required")])
        if "\x00" in uri:
            raise InvalidArgument(f"{field}: a location cannot contain NUL",
                                  reason="LOCATION_INVALID",
                                  field_violations=[FieldViolation(field, "contains NUL")])
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme in OBJECT_STORE_SCHEMES:
            return self._object_store(uri, field)
        if scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise self._denied(uri, field, "names another host")
            raw = unquote(parsed.path)
        elif scheme:
            raise self._denied(uri, field, f"the scheme {scheme!r} is not allowed")
        else:
            raw = uri
        return Location(uri, self._local(uri, raw, field, base or self.imports, allow_glob))

    def readable(self, uri: str, field: str, *, allow_glob: bool = False) -> Location:
        """An allowed location that exists (a local file or directory); NOT_FOUND if not."""
        loc = self.locate(uri, field, allow_glob=allow_glob)
        if loc.path is not None and not allow_glob and not loc.path.exists():
            raise NotFound(f"{field}: {uri!r} does not exist", reason="LOCATION_NOT_FOUND",
                           metadata={"field": field})
        return loc

    def writable(self, uri: str, field: str, *, overwrite: bool = False) -> Location:
        """An allowed output location, its directory created; ALREADY_EXISTS if a file is
        there and ``overwrite`` is off (no API overwrites a caller-named file silently)."""
        loc = self.locate(uri, field, base=self.exports)
        if loc.path is not None:
            if loc.path.exists() and (not overwrite or loc.path.is_dir()):
                raise AlreadyExists(f"{field}: {uri!r} already exists; name a new file",
                                    reason="LOCATION_EXISTS", metadata={"field": field})
            loc.path.parent.mkdir(parents=True, exist_ok=True)
        return loc

    def output(self, name: str) -> Location:
        """A server-chosen output file ``name`` under the exports root."""
        path = self.exports / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return Location(path.as_uri(), path)

    def allows(self, path: Path) -> bool:
        """Is the (already resolved) local ``path`` under a root?"""
        return any(path == r or path.is_relative_to(r) for r in self.roots)

    # ------------------------------------------------------------------ internals

    def _local(self, uri: str, raw: str, field: str, base: Path, allow_glob: bool) -> Path:
        path = Path(raw)  # no ~ expansion: the server's home is not the caller's
        if not path.is_absolute():
            path = base / path
        parts = path.parts
        globbed = [i for i, p in enumerate(parts) if _GLOB & set(p)]
        if globbed and (not allow_glob or globbed != [len(parts) - 1]):
            raise InvalidArgument(
                f"{field}: {uri!r}: wildcards are allowed only in the file name" if allow_glob
                else f"{field}: {uri!r}: wildcards are not allowed here",
                reason="LOCATION_INVALID", metadata={"field": field},
                field_violations=[FieldViolation(field, "wildcards")])
        resolved = path.parent.resolve() / path.name if globbed else path.resolve()
        if not self.allows(resolved):
            raise self._denied(uri, field, "is outside this server's storage roots")
        return resolved

    def _object_store(self, uri: str, field: str) -> Location:
        parsed = urlparse(uri)
        key = parsed.path
        if not parsed.netloc or any(p in ("..", ".") for p in key.split("/")):
            raise InvalidArgument(f"{field}: {uri!r} is not a valid object-store URI",
                                  reason="LOCATION_INVALID", metadata={"field": field},
                                  field_violations=[FieldViolation(field, "invalid URI")])
        normal = f"{parsed.scheme.lower()}://{parsed.netloc}{key}"
        if not any(normal == b.rstrip("/") or normal.startswith(b) for b in self.buckets):
            raise PermissionDenied(
                f"{field}: {uri!r} is not in an allowed bucket; an operator may allow it "
                f"with {self.buckets_setting}", reason="LOCATION_NOT_ALLOWED",
                metadata={"field": field, "setting": self.buckets_setting},
                field_violations=[FieldViolation(field, "bucket not allowed")])
        return Location(uri, None)

    def _denied(self, uri: str, field: str, why: str) -> PermissionDenied:
        return PermissionDenied(
            f"{field}: {uri!r} {why}; files must be under the service's storage roots "
            f"(an operator may add a directory with {self.roots_setting}) and object-store "
            f"keys in a bucket of {self.buckets_setting}", reason="LOCATION_NOT_ALLOWED",
            metadata={"field": field, "setting": self.roots_setting},
            field_violations=[FieldViolation(field, "location not allowed")])


def _bucket_prefix(entry: str) -> str:
    parsed = urlparse(entry.strip())
    if parsed.scheme.lower() not in OBJECT_STORE_SCHEMES or not parsed.netloc:
        raise ValueError(f"storage bucket {entry!r}: expected scheme://bucket[/prefix] with one "
                         f"of {sorted(OBJECT_STORE_SCHEMES)}")
    prefix = parsed.path.rstrip("/")
    return f"{parsed.scheme.lower()}://{parsed.netloc}{prefix}/"


def read_parquet(location: Location, field: str, columns: Sequence[str] | None = None) -> Any:
    """The Arrow table at an allowed ``location``; INVALID_ARGUMENT if it is no parquet.

    The error names the field and the caller's URI only: a parser's message can
    quote the file's bytes, its path or its schema, so none of it is passed on.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(location.target, columns=list(columns) if columns else None)
    except (pa.ArrowInvalid, pa.ArrowException, OSError, KeyError, ValueError):
        raise InvalidArgument(
            f"{field}: {location.uri!r} is not a readable parquet file"
            + (" with the requested columns" if columns else ""),
            reason="BAD_PARQUET", metadata={"field": field},
            field_violations=[FieldViolation(field, "unreadable parquet")]) from None
