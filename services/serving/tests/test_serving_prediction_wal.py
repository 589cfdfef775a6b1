"""The prediction log's write-ahead log: group commit, fsync policies, recovery of a torn
write, acknowledged offsets across restarts, deletion of acknowledged segments, lanes; the
record codec; and the shipper's resend after a crash (exactly the unacknowledged records)."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from modelplane.serving.log_columns import encode_columnar
from modelplane.serving.prediction_log import (
    PredictionLogger,
    PredictionRecord,
    decode_record,
    encode_record,
)
from modelplane.serving.servable_model import ModelInput
from modelplane.serving.write_ahead_log import FsyncPolicy, LaneBusy, Position, WriteAheadLog


def _crash(wal: WriteAheadLog) -> None:
    """What a SIGKILL leaves: the files as written, no flush, no final fsync, lock released."""
    if wal._interval_task is not None:
        wal._interval_task.cancel()
    os.close(wal._fd)
    os.close(wal._lock_fd)
    wal._closed = True


def _read_all(wal: WriteAheadLog, start: Position | None = None) -> tuple[list[bytes], Position]:
    return wal.read(start or wal.acked, wal.end, 1_000_000)


async def test_one_loop_iteration_is_one_write_and_the_futures_wait_for_it(tmp_path):
    wal = WriteAheadLog(tmp_path / "lane", fsync=FsyncPolicy("never"))
    futures = [wal.append(f"r{i}".encode()) for i in range(100)]
    assert not any(f.done() for f in futures)  # nothing is written before the commit
    await asyncio.gather(*futures)
    assert wal.commits == 1 and wal.appended == 100
    await asyncio.gather(*(wal.append(b"x") for _ in range(3)))
    assert wal.commits == 2
    payloads, _ = _read_all(wal)
    assert payloads == [f"r{i}".encode() for i in range(100)] + [b"x"] * 3
    await wal.close()


async def test_fsync_always_answers_after_the_fsync_and_groups_commits(tmp_path):
    wal = WriteAheadLog(tmp_path / "lane", fsync=FsyncPolicy("always"))
    first = [wal.append(b"a") for _ in range(10)]
    await asyncio.sleep(0)  # the first group is written; its fsync runs in a thread
    second = [wal.append(b"b") for _ in range(10)]  # these wait for the next fsync
    await asyncio.gather(*first)
    assert wal.fsyncs >= 1
    await asyncio.gather(*second)
    assert wal.fsyncs == 2 and wal.commits == 2
    await wal.close()


async def test_fsync_interval_syncs_in_the_background(tmp_path):
    wal = WriteAheadLog(tmp_path / "lane", fsync=FsyncPolicy("interval", 0.05))
    await wal.append(b"a")
    assert wal.fsyncs == 0  # the answer did not wait for the disk
    for _ in range(100):
        await asyncio.sleep(0.02)
        if wal.fsyncs:
            break
    assert wal.fsyncs == 1
    await wal.close()


@pytest.mark.parametrize("tear", ["cut", "crc"])
async def test_a_torn_last_record_is_dropped_cleanly_on_recovery(tmp_path, tear):
    lane = tmp_path / "lane"
    wal = WriteAheadLog(lane, fsync=FsyncPolicy("never"))
    await asyncio.gather(*(wal.append(f"rec{i}".encode()) for i in range(3)))
    segment = lane / f"{wal.end.segment:020d}.seg"
    whole = segment.stat().st_size
    _crash(wal)
    payload = b"the record that was being written"
    if tear == "cut":  # the crash cut the next write short
        torn = struct.pack("<II", len(payload), 0) + payload[:7]
    else:  # whole length, garbage bytes (a page never written back)
        torn = struct.pack("<II", len(payload), 12345) + payload
    segment.write_bytes(segment.read_bytes() + torn)

    wal = WriteAheadLog(lane, fsync=FsyncPolicy("never"))
    assert wal.backlog == 3
    assert segment.stat().st_size == whole  # truncated at the last whole record
    await wal.append(b"after")
    payloads, _ = _read_all(wal)
    assert payloads == [b"rec0", b"rec1", b"rec2", b"after"]
    assert wal.end.segment > int(segment.stem)  # appends go to a new segment
    await wal.close()


async def test_acknowledged_offsets_survive_a_restart_and_whole_segments_are_deleted(tmp_path):
    lane = tmp_path / "lane"
    wal = WriteAheadLog(lane, fsync=FsyncPolicy("never"), segment_bytes=64)
    for i in range(20):  # ~13 bytes a frame: several segments
        await wal.append(f"record-{i:02d}".encode())
    assert len(wal.segments) > 3
    payloads, pos = wal.read(wal.acked, wal.end, 8)
    assert payloads == [f"record-{i:02d}".encode() for i in range(8)]
    await asyncio.to_thread(wal.ack, pos, 8)
    files = sorted(p.name for p in lane.glob("*.seg"))
    assert all(int(Path(f).stem) >= pos.segment for f in files)  # wholly acked: gone
    _crash(wal)

    wal = WriteAheadLog(lane, fsync=FsyncPolicy("never"), segment_bytes=64)
    assert wal.acked == pos and wal.backlog == 12 and wal.unacknowledged == 12
    payloads, pos = _read_all(wal)
    assert payloads == [f"record-{i:02d}".encode() for i in range(8, 20)]
    wal.ack(pos, 12)
    assert wal.unacknowledged == 0
    assert [p.name for p in lane.glob("*.seg")] == [f"{wal.end.segment:020d}.seg"]
    await wal.close()
    wal = WriteAheadLog(lane, fsync=FsyncPolicy("never"), segment_bytes=64)
    assert wal.backlog == 0 and _read_all(wal)[0] == []
    await wal.close()


async def test_each_process_claims_its_own_lane(tmp_path):
    a = WriteAheadLog.claim(tmp_path)
    b = WriteAheadLog.claim(tmp_path)
    assert (a.directory.name, b.directory.name) == ("0", "1")
    with pytest.raises(LaneBusy):
        WriteAheadLog(tmp_path / "0")
    await a.close()
    c = WriteAheadLog.claim(tmp_path)  # a restarted process takes back the free lane
    assert c.directory.name == "0"
    await b.close()
    await c.close()


def test_bad_fsync_policies_are_refused():
    with pytest.raises(ValueError, match="always, interval, never"):
        FsyncPolicy("sometimes")
    with pytest.raises(ValueError):
        FsyncPolicy("interval", 0)


def _records() -> list[PredictionRecord]:
    x = np.random.default_rng(1).normal(size=(2, 3))
    return [
        PredictionRecord("p1", "d", "m", "3", "production", 1_700_000_000.5,
                         ModelInput(2, {}, x, "x"), np.array([0, 1]), 1.5, {}, "champion",
                         "ab" * 16, "", "", "cd" * 8),
        PredictionRecord("p2", "d", "m", "3", "shadow", 1_700_000_001.0,
                         ModelInput(2, {"age": np.array([30, 40]),
                                        "city": np.array(["a", "b"], dtype=object),
                                        "ok": np.array([True, False])}),
                         np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32), 2.0,
                         {"spend": np.array([1.5, 2.5])}, "shadow:m@c", "", "TIMEOUT", "p1"),
        PredictionRecord.from_dict({"prediction_id": "p3", "deployment": "d", "model": "m",
                                    "model_version": "1", "environment": "batch", "time": 5.0,
                                    "inputs": {"x": [[1.0, 2.0]]}, "outputs": [1],
                                    "latency_ms": 0.1}),
    ]


def test_records_come_back_from_the_log_as_they_went_in():
    originals = _records()
    decoded = [decode_record(encode_record(r)) for r in originals]
    for a, b in zip(originals, decoded, strict=True):
        assert b.to_dict() == a.to_dict()
    assert decoded[1].outputs.dtype == np.float32
    assert isinstance(decoded[0].inputs, ModelInput) and decoded[0].inputs.matrix_name == "x"
    # The columns observability receives are the same whether the record was live or read back.
    live = [pa.ipc.open_stream(m.ipc).read_all() for m in encode_columnar(originals)]
    back = [pa.ipc.open_stream(m.ipc).read_all() for m in encode_columnar(decoded)]
    assert [t.to_pydict() for t in back] == [t.to_pydict() for t in live]
    with pytest.raises(ValueError, match="format"):
        decode_record(b"\x07junk")


def test_values_the_log_cannot_hold_as_they_are_are_kept_as_strings():
    from decimal import Decimal

    rec = PredictionRecord("p", "d", "m", "1", "production", 1.0,
                           ModelInput(2, {"price": np.array([Decimal("1.5"), None],
                                                            dtype=object)}),
                           np.array(["yes", "no"]), 0.1)
    back = decode_record(encode_record(rec))
    assert back.inputs.columns["price"].tolist() == ["1.5", None]
    assert back.outputs.tolist() == ["yes", "no"]


class _Sink:
    """A sink that fails while ``down`` and remembers what it took."""

    def __init__(self) -> None:
        self.down = False
        self.taken: list[str] = []
        self.calls = 0

    async def send(self, records):
        self.calls += 1
        if self.down:
            raise ConnectionError("observability is down")
        self.taken.extend(r.prediction_id for r in records)
        return ()

    async def close(self) -> None:
        return None


def _record(pid: str) -> PredictionRecord:
    return PredictionRecord(pid, "d", "m", "1", "production", 1.0,
                            ModelInput(1, {}, np.ones((1, 2)), "x"), np.array([1]), 0.5)


async def _until(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_a_crash_before_the_ack_resends_exactly_the_unacknowledged_records(tmp_path):
    sink = _Sink()
    logger = PredictionLogger(sink, tmp_path, batch_size=10, flush_seconds=0.02,
                              retry_seconds=0.05, max_retry_seconds=0.1)
    logger.start()
    await asyncio.gather(*(logger.log(_record(f"a{i}")) for i in range(25)))
    await _until(lambda: len(sink.taken) == 25 and logger.pending == 0)
    sink.down = True
    await asyncio.gather(*(logger.log(_record(f"b{i}")) for i in range(30)))
    await _until(lambda: sink.calls > 2)
    assert logger.pending == 30 and len(sink.taken) == 25
    # SIGKILL: nothing more is shipped, flushed or closed.
    logger._task.cancel()
    _crash(logger.wal)

    sink2 = _Sink()
    again = PredictionLogger(sink2, tmp_path, batch_size=10, flush_seconds=0.02)
    assert again.wal.directory == logger.wal.directory and again.pending == 30
    again.start()
    await _until(lambda: again.pending == 0)
    assert sink2.taken == [f"b{i}" for i in range(30)]  # in order, none of the acked ones
    await again.close()
    assert not list((tmp_path / "wal" / "0").glob("*.seg"))[1:]  # one (empty) segment left


async def test_json_lines_spool_files_of_earlier_versions_are_delivered(tmp_path):
    import json

    (tmp_path / "00000000000000000001-1-000000.jsonl").write_text(
        "\n".join(json.dumps(r.to_dict()) for r in _records()) + "\n")
    sink = _Sink()
    logger = PredictionLogger(sink, tmp_path, flush_seconds=0.02)
    logger.start()
    await _until(lambda: len(sink.taken) == 3)
    assert sink.taken == ["p1", "p2", "p3"] and not list(tmp_path.glob("*.jsonl"))
    await logger.close()


def test_the_fsync_policy_comes_from_the_environment(tmp_path):
    from modelplane.serving.settings import ServingSettings

    s = ServingSettings.from_env({"MODELPLANE_DATA_DIR": str(tmp_path),
                                  "MODELPLANE_SERVING_LOG_FSYNC": "Always",
                                  "MODELPLANE_SERVING_LOG_FSYNC_INTERVAL_MS": "250"})
    assert (s.log_fsync, s.log_fsync_interval_ms) == ("always", 250.0)
    assert ServingSettings.from_env({"MODELPLANE_DATA_DIR": str(tmp_path)}).log_fsync == \
        "interval"


def test_an_empty_or_off_rest_address_means_no_rest_listener(tmp_path: Path) -> None:
    """A benchmark or a second replica on one host says "no REST" with an empty value:
    it must not take the default port 7114 (which a running platform holds)."""
    from modelplane.gateway.settings import _oip_target
    from modelplane.serving.settings import ServingSettings

    base = {"MODELPLANE_DATA_DIR": str(tmp_path)}
    assert ServingSettings.from_env(base).http_addr == "127.0.0.1:7114"
    for off in ("", "off", "none", " OFF "):
        env = {**base, "MODELPLANE_SERVING_HTTP_ADDR": off}
        assert ServingSettings.from_env(env).http_addr == ""
        assert _oip_target(env) == ""  # the gateway forwards no /v2 there either
    env = {**base, "MODELPLANE_SERVING_HTTP_ADDR": "0.0.0.0:9000"}
    assert ServingSettings.from_env(env).http_addr == "0.0.0.0:9000"
    assert _oip_target(env) == "127.0.0.1:9000"
