"""The CI entry point's exit codes when it cannot even start a run."""

from __future__ import annotations

import io
import socket
from pathlib import Path

from modelplane.validator import cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_validator_exits_3(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("label_column: y\n")
    err = io.StringIO()
    code = cli.main(["--model", "m", "--version", "1", "--dataset", "ds1", "--policy", str(policy),
                     "--target", f"127.0.0.1:{_closed_port()}", "--timeout", "5"], io.StringIO(), err,
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
