"""The CI entry point: its exit codes when it cannot even start a run, and the progress it
shows while one runs (against a scripted validator)."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from modelplane.validator import cli
from modelplane.validator.v1 import validator_pb2 as pb
from modelplane.validator.v1 import validator_pb2_grpc as pb_grpc


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_validator_exits_3(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("label_column: y\n")
    err = io.StringIO()
    code = cli.main(["--model", "m", "--version", "1", "--dataset", "ds1", "--policy", str(policy),
                     "--target", f"127.0.0.1:{_closed_port()}", "--timeout", "5"], io.StringIO(),
                     err,
                    {"MODELPLANE_DATA_DIR": str(tmp_path)})
    assert code == cli.EXIT_UNREACHABLE
    assert "unreachable" in err.getvalue()


def test_missing_policy_file_exits_2(tmp_path: Path) -> None:
    err = io.StringIO()
    code = cli.main(["--model", "m", "--version", "1", "--dataset", "ds1", "--policy",
                     str(tmp_path / "none.yaml")], io.StringIO(), err, {})
    assert code == cli.EXIT_ERROR and "cannot read the policy file" in err.getvalue()


def test_dataset_argument_tells_ids_from_paths(tmp_path: Path) -> None:
    assert cli.dataset_ref("ds_42").dataset == "ds_42"
    assert cli.dataset_ref("data/test.parquet").parquet_uri.endswith("/data/test.parquet")
    assert cli.dataset_ref("file:///x.parquet").parquet_uri == "file:///x.parquet"


class _ScriptedValidator(pb_grpc.ValidatorServiceServicer):
    """A validator that replays one run: two checks, the second failing."""

    def CreateValidationRun(self, request: Any, context: Any) -> pb.ValidationRun:
        return pb.ValidationRun(id="r1", state=pb.RUN_STATE_PENDING,
                                progress=pb.RunProgress(checks_total=2, stage="queued"))

    def WatchValidationRun(self, request: Any, context: Any) -> Iterator[pb.ValidationRun]:
        running = pb.RUN_STATE_RUNNING
        for state, done, check, stage in [
                (running, 0, "", "loading data"), (running, 0, "metrics", "running metrics"),
                (running, 1, "bias", "running bias"), (running, 2, "", "checks done"),
                (pb.RUN_STATE_SUCCEEDED, 2, "", "done")]:
            yield pb.ValidationRun(id="r1", state=state, report_id="rep1",
                                   progress=pb.RunProgress(checks_total=2, checks_done=done,
                                                           current_check=check, stage=stage))

    def GetValidationReport(self, request: Any, context: Any) -> pb.ValidationReport:
        return pb.ValidationReport(
            id="rep1", model="m", version="1", status=pb.CHECK_STATUS_FAIL,
            summary="1 check failed: bias", checks=[
                pb.CheckResult(check="metrics", status=pb.CHECK_STATUS_PASS,
                               duration=Duration(seconds=1, nanos=250_000_000)),
                pb.CheckResult(check="bias", status=pb.CHECK_STATUS_FAIL,
                               duration=Duration(seconds=3))])


@pytest.fixture(scope="module")
def scripted_validator() -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_ValidatorServiceServicer_to_server(_ScriptedValidator(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _validate(target: str, tmp_path: Path, err: io.StringIO, environ: dict[str, str]) -> int:
    policy = tmp_path / "p.yaml"
    policy.write_text("label_column: y\n")
    return cli.main(["--model", "m", "--version", "1", "--dataset", "ds1", "--policy", str(policy),
                     "--target", target, "--no-baseline"], io.StringIO(), err,
                    {"MODELPLANE_DATA_DIR": str(tmp_path), **environ})


def test_piped_progress_is_one_line_per_check_state(scripted_validator: str,
                                                    tmp_path: Path) -> None:
    err = io.StringIO()
    assert _validate(scripted_validator, tmp_path, err, {}) == cli.EXIT_FAIL
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue()
    per_check = [line for line in lines if line.startswith(("metrics:", "bias:"))]
    assert per_check[0] == "metrics: running" and per_check[1].startswith("metrics: checked (")
    assert per_check[2] == "bias: running" and per_check[3].startswith("bias: checked (")
    # the outcomes, with each check's own time, arrive with the report
    assert per_check[4:] == ["metrics: PASS (1.2 s)", "bias: FAIL (3.0 s)"]
    assert "run: loading data - 0/2 checks done, 2 pending" in lines
    assert lines[-1].startswith("run: FAIL (") and lines[-1].endswith(" - 1 check failed: bias")

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_shows_each_check_with_its_outcome(scripted_validator: str,
                                                             tmp_path: Path) -> None:
    err = _Terminal()
    assert _validate(scripted_validator, tmp_path, err, {"TERM": "xterm"}) == cli.EXIT_FAIL
    screen = err.getvalue()
    assert "\x1b[" in screen  # drawn live, not as lines
    uncoloured = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    rows = [r.strip() for r in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", uncoloured).splitlines()
            if r.strip()]
    final = rows[-3:]  # the last frame: the run, then each check with its outcome and time
    assert final[0].split()[:3] == ["✗", "run", "FAIL"]
    assert final[1].split() == ["✓", "metrics", "PASS", "1.2", "s"]
    assert final[2].split() == ["✗", "bias", "FAIL", "3.0", "s"]
