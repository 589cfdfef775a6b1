"""A write-ahead log of opaque byte records: append-only segment files, group commit.

Layout of one log directory (a *lane*, owned by one process at a time)::

    lock                    flock'ed by the process that owns the lane
    ack                     "<segment> <offset>": everything before it was acknowledged
    00000000000000000007.seg
    00000000000000000008.seg   the segment being appended to (a new one per process start)

A segment is a sequence of frames ``[u32 length][u32 crc32(payload)][payload]``
(little-endian). Appends made while the event loop runs one iteration are
written together with one ``write()`` (group commit): :meth:`WriteAheadLog.append`
returns a future that completes once the record is in the file, so a caller that
awaits it knows the record survives a SIGKILL of this process (the data is in
the OS page cache). Surviving a crash of the *machine* needs ``fsync``, by policy:

- ``always``: the future completes after the fsync that covers the record (one
  fsync per group commit, run off the event loop; records appended meanwhile
  join the next one).
- ``interval``: fsync at most every ``fsync_interval`` seconds, in the
  background; a machine crash may lose up to that interval.
- ``never``: the OS writes back when it likes (Linux: ~30 s by default).

Recovery (at open): segments wholly before the ack position are deleted; the
others are scanned frame by frame, and a frame that is cut short or fails its
CRC (a torn write at the moment of a crash) ends that segment: the file is
truncated there, so the bytes after it are never read as records. Appends
always go to a new segment, never to one a crashed process left behind.

Reading (:meth:`read`) may run in another thread; it reads only bytes already
committed. :meth:`ack` records how far a consumer got (atomically, by rename)
and deletes segments that are wholly acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("modelplane.serving.write_ahead_log")

FSYNC_POLICIES = ("always", "interval", "never")
_HEADER = struct.Struct("<II")
#: a frame longer than this is garbage (a torn length), not a record
MAX_RECORD_BYTES = 64 * 1024 * 1024
_SUFFIX = ".seg"


class Position(NamedTuple):
    """A place in the log: a segment number and a byte offset in it."""

    segment: int
    offset: int


class LaneBusy(Exception):
    """Another process holds this log directory."""


@dataclass(frozen=True)
class FsyncPolicy:
    mode: str = "interval"
    interval: float = 0.2  # seconds, for mode "interval"

    def __post_init__(self) -> None:
        if self.mode not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {', '.join(FSYNC_POLICIES)}, "
                             f"not {self.mode!r}")
        if self.interval <= 0:
            raise ValueError("the fsync interval must be positive")


def _segment_path(directory: Path, segment: int) -> Path:
    return directory / f"{segment:020d}{_SUFFIX}"


def scan_frames(data: bytes, start: int = 0, limit: int | None = None,
                max_records: int | None = None) -> tuple[list[bytes], int, bool]:
    """Frames in ``data[start:limit]``: (payloads, offset after the last whole frame,
    whether a torn or corrupt frame stopped the scan before ``limit``)."""
    end = len(data) if limit is None else limit
    out: list[bytes] = []
    pos = start
    while pos < end and (max_records is None or len(out) < max_records):
        if pos + _HEADER.size > end:
            return out, pos, True
        length, crc = _HEADER.unpack_from(data, pos)
        body = pos + _HEADER.size
        if length > MAX_RECORD_BYTES or body + length > end:
            return out, pos, True
        payload = data[body:body + length]
        if zlib.crc32(payload) != crc:
            return out, pos, True
        out.append(payload)
        pos = body + length
    return out, pos, False


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class WriteAheadLog:
    """One lane of the log. ``append`` / ``ack`` / ``close`` on the event loop's thread;
    ``read`` from any thread."""

    def __init__(self, directory: Path, *, fsync: FsyncPolicy | None = None,
                 segment_bytes: int = 16 * 1024 * 1024,
                 write_error: Callable[[OSError], Exception] | None = None) -> None:
        self.directory = directory
        #: what an append's future raises when the write or fsync failed
        self.write_error = write_error or (lambda exc: exc)
        self.policy = fsync or FsyncPolicy()
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise LaneBusy(str(directory)) from None
        #: committed size of every segment on disk, oldest first (the last one grows)
        self._sizes: dict[int, int] = {}
        self.acked = self._read_ack()
        self.backlog = self._recover()  # records not acknowledged before this start
        self.appended = 0
        self.acked_records = 0
        current = max([*self._sizes, self.acked.segment]) + 1
        self._segment = current
        self._fd = os.open(_segment_path(directory, current),
                           os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sizes[current] = 0
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._commit_scheduled = False
        self._unsynced: list[asyncio.Future[None]] = []  # written, awaiting fsync (always)
        self._syncing: asyncio.Task[None] | None = None
        self._dirty = False
        self._interval_task: asyncio.Task[None] | None = None
        self._closed = False
        self._closing = False
        self.commits = 0
        self.fsyncs = 0

    # --- claiming ---------------------------------------------------------------------
    @classmethod
    def claim(cls, root: Path, *, fsync: FsyncPolicy | None = None,
              segment_bytes: int = 16 * 1024 * 1024, lanes: int = 64,
              write_error: Callable[[OSError], Exception] | None = None) -> WriteAheadLog:
        """The lowest-numbered lane ``root/<n>`` no other process holds (several
        processes sharing a data dir each get their own; a restarted one takes back
        the lane its predecessor left, with its unacknowledged records)."""
        for n in range(lanes):
            try:
                return cls(root / str(n), fsync=fsync, segment_bytes=segment_bytes,
                           write_error=write_error)
            except LaneBusy:
                continue
        raise LaneBusy(f"all {lanes} lanes under {root} are held by other processes")

    # --- recovery ---------------------------------------------------------------------
    def _read_ack(self) -> Position:
        try:
            seg, off = (self.directory / "ack").read_text().split()
            return Position(int(seg), int(off))
        except FileNotFoundError:
            return Position(0, 0)
        except ValueError:
            log.error("unreadable ack file in %s: resending the whole log", self.directory)
            return Position(0, 0)

    def _recover(self) -> int:
        records = 0
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            try:
                seg = int(path.stem)
            except ValueError:
                continue
            if seg < self.acked.segment:
                path.unlink(missing_ok=True)
                continue
            data = path.read_bytes()
            start = self.acked.offset if seg == self.acked.segment else 0
            frames, end, torn = scan_frames(data, min(start, len(data)))
            if torn:
                log.warning("%s: a torn or corrupt record at byte %d (%d byte(s) after it "
                            "are dropped; a crash cut the last write short)", path, end,
                            len(data) - end)
                with open(path, "r+b") as fh:
                    fh.truncate(end)
                    fh.flush()
                    os.fsync(fh.fileno())
            self._sizes[seg] = end
            records += len(frames)
        if records:
            log.info("write-ahead log %s: %d record(s) not acknowledged before this start",
                     self.directory, records)
        return records

    # --- writing (event loop) ---------------------------------------------------------
    def append(self, payload: bytes) -> asyncio.Future[None]:
        """Queue ``payload`` for this loop iteration's group commit; the future completes
        when it is written (``always``: and fsync'd)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if self._closed:
            fut.set_exception(RuntimeError("the write-ahead log is closed"))
            return fut
        self._pending.append(frame(payload))
        self._waiters.append(fut)
        if not self._commit_scheduled:
            self._commit_scheduled = True
            loop.call_soon(self._commit)
        return fut

    def _commit(self) -> None:
        self._commit_scheduled = False
        if not self._pending:
            return
        frames, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        data = b"".join(frames)
        try:
            if self._sizes[self._segment] + len(data) > self.segment_bytes \
                    and self._sizes[self._segment] > 0:
                self._rotate()
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            log.error("could not write %d prediction record(s) to %s: %s", len(frames),
                      self.directory, exc)
            err = self.write_error(exc)
            for w in waiters:
                if not w.done():
                    w.set_exception(err)
            return
        self._sizes[self._segment] += len(data)
        self.appended += len(frames)
        self.commits += 1
        self._dirty = True
        if self.policy.mode == "always":
            self._unsynced.extend(waiters)
            if self._syncing is None:
                self._syncing = asyncio.get_running_loop().create_task(self._sync_waiters())
        else:
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            if self.policy.mode == "interval" and self._interval_task is None \
                    and not self._closing:
                self._interval_task = asyncio.get_running_loop().create_task(
                    self._sync_every_interval())

    async def _sync_waiters(self) -> None:
        try:
            while self._unsynced:
                waiters, self._unsynced = self._unsynced, []
                try:
                    await self._fsync()
                except OSError as exc:
                    log.error("fsync of %s failed: %s", self.directory, exc)
                    err = self.write_error(exc)
                    for w in waiters:
                        if not w.done():
                            w.set_exception(err)
                    continue
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._syncing = None

    async def _fsync(self) -> None:
        self._dirty = False
        await asyncio.to_thread(os.fsync, self._fd)
        self.fsyncs += 1

    async def _sync_every_interval(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.policy.interval)
            if self._dirty:
                try:
                    await self._fsync()
                except OSError as exc:
                    log.error("fsync of %s failed: %s", self.directory, exc)

    def _rotate(self) -> None:
        if self.policy.mode != "never":
            os.fsync(self._fd)
        os.close(self._fd)
        self._segment += 1
        self._fd = os.open(_segment_path(self.directory, self._segment),
                           os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._sizes[self._segment] = 0

    async def flush(self) -> None:
        """Commit what is queued and fsync it (whatever the policy)."""
        self._commit()
        if self._syncing is not None:
            await self._syncing
        if not self._closed:
            await self._fsync()

    # --- reading (any thread) ---------------------------------------------------------
    @property
    def end(self) -> Position:
        """Where the committed records end (read this on the event loop's thread)."""
        return Position(self._segment, self._sizes[self._segment])

    def read(self, start: Position, limit: Position, max_records: int
             ) -> tuple[list[bytes], Position]:
        """Up to ``max_records`` payloads from ``start`` (not past ``limit``, a committed
        position taken on the event loop) and the position after the last one."""
        out: list[bytes] = []
        seg, off = start
        segments = sorted(s for s in list(self._sizes) if seg <= s <= limit.segment)
        for s in segments:
            if s > seg:
                seg, off = s, 0
            size = limit.offset if s == limit.segment else self._sizes.get(s, 0)
            if off < size:
                try:
                    with open(_segment_path(self.directory, s), "rb") as fh:
                        fh.seek(off)
                        data = fh.read(size - off)
                except FileNotFoundError:
                    continue
                frames, used, torn = scan_frames(data, 0, None, max_records - len(out))
                if torn:  # never expected: committed bytes are whole frames
                    log.error("corrupt record in %s at byte %d", s, off + used)
                out.extend(frames)
                off += used
                if len(out) >= max_records or torn:
                    return out, Position(seg, off)
        return out, Position(seg, off)

    def ack(self, position: Position, records: int) -> None:
        """Everything before ``position`` was delivered: remember it, delete whole segments."""
        tmp = self.directory / "ack.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{position.segment} {position.offset}\n")
            if self.policy.mode == "always":
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, self.directory / "ack")
        self.acked = position
        self.acked_records += records
        for s in sorted(self._sizes):
            done = s < position.segment or (s == position.segment
                                            and position.offset >= self._sizes[s])
            if s == self._segment or not done:
                break
            _segment_path(self.directory, s).unlink(missing_ok=True)
            del self._sizes[s]

    @property
    def unacknowledged(self) -> int:
        return self.backlog + self.appended - self.acked_records

    @property
    def segments(self) -> list[int]:
        return sorted(self._sizes)

    async def close(self) -> None:
        if self._closed:
            return
        self._closing = True
        if self._interval_task is not None:
            self._interval_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._interval_task
            self._interval_task = None
        try:
            await self.flush()
        except OSError as exc:
            log.error("final fsync of %s failed: %s", self.directory, exc)
        self._closed = True
        os.close(self._fd)
        os.close(self._lock_fd)  # releases the lane
