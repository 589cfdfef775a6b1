"""The CI/CD entry point: validate a model version and exit non-zero on FAIL.

    modelplane validate --model NAME --version V --dataset ID_OR_URI --policy FILE
                        [--baseline-version V | --no-baseline] [--training-dataset ID_OR_URI]
                        [--json] [--target HOST:PORT] [--timeout SECONDS]

``--dataset`` is a featurestore Dataset id, or a parquet path / ``file://`` URI
(anything containing ``/`` or ending in ``.parquet``). The run is created on the
validator service (``--target``, default ``MODELPLANE_VALIDATOR_TARGET`` or
127.0.0.1:7103), followed until it ends, and its report printed as a table (or
JSON with ``--json``). Exit codes: 0 PASS or WARN, 1 FAIL, 2 bad input or a
run that could not finish, 3 the validator is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import grpc
from google.protobuf import json_format

from modelplane.kit.clients import channel
from modelplane.kit.errors import ModelplaneError
from modelplane.kit.progress import ProgressBoard
from modelplane.kit.settings import ServiceSettings
from modelplane.kit.status import raise_from_rpc_error
from modelplane.validator.v1 import validator_pb2 as pb
from modelplane.validator.v1 import validator_pb2_grpc as pb_grpc

EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_UNREACHABLE = 0, 1, 2, 3
_STATUS_TEXT = {pb.CHECK_STATUS_PASS: "PASS", pb.CHECK_STATUS_WARN: "WARN",
                pb.CHECK_STATUS_FAIL: "FAIL", pb.CHECK_STATUS_SKIPPED: "SKIP",
                pb.CHECK_STATUS_ERROR: "ERROR", pb.CHECK_STATUS_UNSPECIFIED: "?"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane validate",
                                description="Validate a registered model version against a policy.")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument("--version", required=True, help="candidate version number")
    p.add_argument("--dataset", required=True,
                   help="featurestore Dataset id, or a parquet path / file:// URI")
    p.add_argument("--policy", required=True, type=Path, help="policy file (YAML or JSON)")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--baseline-version", default="", help="compare with this version "
                      "(default: the champion)")
    base.add_argument("--no-baseline", action="store_true", help="compare with no baseline version")
    p.add_argument("--training-dataset", default="", help="training dataset id or parquet URI "
                   "(default: the version's lineage)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--target", default="", help="validator address host:port")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the run")
    return p


def dataset_ref(value: str) -> pb.DatasetRef:
    if "/" in value or value.endswith(".parquet") or value.startswith("file:"):
        uri = value if value.startswith("file:") else str(Path(value).resolve())
        return pb.DatasetRef(parquet_uri=uri)
    return pb.DatasetRef(dataset=value)


def render_table(report: pb.ValidationReport, run: pb.ValidationRun, out: TextIO) -> None:
    status = _STATUS_TEXT[report.status]
    out.write(f"Validation {status}: {report.model} v{report.version}"
              f"{f' vs v{report.baseline_version}' if report.baseline_version else ''} "
              f"on {report.row_count} rows - {report.summary}\n\n")
    rows = [("CHECK", "STATUS", "TIME", "DETAIL")]
    for c in report.checks:
        worst = sorted(c.thresholds, key=lambda t: -t.status)[:1 if c.message else 2]
        detail = "; ".join([*([c.message] if c.message else []), *(
            f"{t.name}{f'[{t.subject}]' if t.subject else ''}={t.measured:.4g} "
            f"({'>=' if t.bound == pb.THRESHOLD_BOUND_LOWER else '<='} {t.limit:.4g})"
            for t in worst if t.status != pb.CHECK_STATUS_PASS or not c.message)])
        seconds = c.duration.seconds + c.duration.nanos / 1e9
        rows.append((c.check, _STATUS_TEXT[c.status], f"{seconds:.2f}s", detail[:160]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out.writelines(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}\n"
                   for r in rows)
    if run.notes:
        out.write("\nNotes:\n" + "".join(f"  - {n}\n" for n in run.notes))
    out.write(f"\nreport {report.id}"
              f"{f' ({report.report_uri})' if report.report_uri else ''}; "
              f"registry {'attached' if run.registry_attached else 'NOT attached'}; "
              f"observability baseline {'set' if run.observability_baseline_set else 'NOT set'}\n")


class RunWatch:
    """A run's progress as rows on a ``ProgressBoard``: the run (its stage, checks done
    and pending) and one row per check, ``running`` while it runs, ``checked`` once the
    next one starts, then its outcome (PASS, WARN, FAIL, SKIP, ERROR) and its own time
    from the report. (The watch stream names the check running now, not the outcome of
    the ones before it, so outcomes arrive with the report.)"""

    def __init__(self, board: ProgressBoard) -> None:
        self._board = board
        self._current = ""
        board.add("run", "queued")

    def show(self, run: pb.ValidationRun) -> None:
        p = run.progress
        check = p.current_check
        if self._current and check != self._current:
            self._board.set(self._current, "checked", done=True)
        if check and check != self._current:
            self._board.set(check, "running")
        self._current = check
        pending = max(0, p.checks_total - p.checks_done - (1 if check else 0))
        stage = "running checks" if check else (p.stage or "queued")
        self._board.set("run", stage,
                        detail=f"{p.checks_done}/{p.checks_total} checks done, {pending} pending")

    def ended(self, state: str) -> None:
        if self._current:
            self._board.set(self._current, "interrupted", done=True)
        self._board.set("run", state, done=True)

    def report(self, report: pb.ValidationReport) -> None:
        for c in report.checks:
            self._board.set(c.check, _STATUS_TEXT[c.status], done=True,
                            seconds=c.duration.seconds + c.duration.nanos / 1e9)
        self._board.set("run", _STATUS_TEXT[report.status], done=True, detail=report.summary)


async def _validate(args: argparse.Namespace, out: TextIO, err: TextIO,
                    environ: Mapping[str, str] | None) -> int:
    settings = ServiceSettings.from_env("validator", environ)
    if settings.api_key is None:
        # A person's command, not the service: services no longer read admin.key, so the
        # CLI falls back to the local platform's admin key itself.
        admin_key = settings.data_root / "admin.key"
        if admin_key.is_file():
            settings = replace(settings, api_key=admin_key.read_text().strip() or None)
    target = args.target or settings.target("validator")
    try:
        policy_text = args.policy.read_text()
    except OSError as exc:
        err.write(f"error: cannot read the policy file {args.policy}: {exc.strerror}\n")
        return EXIT_ERROR
    request = pb.ValidationRun(model=args.model, version=args.version,
                               dataset=dataset_ref(args.dataset), policy_text=policy_text,
                               baseline_version=args.baseline_version,
                               skip_baseline=args.no_baseline)
    if args.training_dataset:
        request.training_dataset.CopyFrom(dataset_ref(args.training_dataset))
    async with channel(target, settings, tracing=False) as ch:
        stub = pb_grpc.ValidatorServiceStub(ch)
        try:
            run = await stub.CreateValidationRun(
                pb.CreateValidationRunRequest(validation_run=request), timeout=120)
            final = run
            with ProgressBoard(stream=err, err=err, environ=environ) as board:
                watch = RunWatch(board)
                async for update in stub.WatchValidationRun(
                        pb.WatchValidationRunRequest(id=run.id), timeout=args.timeout):
                    final = update
                    watch.show(update)
                if final.state != pb.RUN_STATE_SUCCEEDED:
                    state = pb.RunState.Name(final.state).removeprefix("RUN_STATE_")
                    watch.ended(state)
                    board.note(f"error: run {final.id} {state}: {final.error.message}",
                               error=True)
                    return EXIT_ERROR
                report = await stub.GetValidationReport(
                    pb.GetValidationReportRequest(id=final.report_id), timeout=60)
                watch.report(report)
        except grpc.aio.AioRpcError as rpc:
            if rpc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                err.write(f"error: validator at {target} unreachable: {rpc.details()}\n")
                return EXIT_UNREACHABLE
            try:
                raise_from_rpc_error(rpc)
            except ModelplaneError as exc:
                err.write(f"error: {exc.code}: {exc.message}\n")
                err.writelines(f"  {v.field}: {v.description}\n" for v in exc.field_violations)
            return EXIT_ERROR
    if args.json:
        out.write(json.dumps(json_format.MessageToDict(report, preserving_proto_field_name=True),
                             indent=2) + "\n")
    else:
        render_table(report, final, out)
    return EXIT_FAIL if report.status in (pb.CHECK_STATUS_FAIL,
                                          pb.CHECK_STATUS_ERROR) else EXIT_PASS


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    """``modelplane validate ...`` (``argv`` without the ``validate`` word): the exit code,
    0 PASS/WARN, 1 FAIL, 2 bad input or unfinished run, 3 validator unreachable.

    The API key comes from ``MODELPLANE_API_KEY`` (or the data dir's admin key), the
    address from ``--target`` or ``MODELPLANE_VALIDATOR_TARGET``; ``environ`` replaces
    the process environment (tests)."""
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return asyncio.run(_validate(args, out or sys.stdout, err or sys.stderr, environ))


if __name__ == "__main__":
    raise SystemExit(main())
