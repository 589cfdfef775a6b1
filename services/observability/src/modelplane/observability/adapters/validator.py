"""The validator's reports, for lineage (``GetValidationReport``)."""

from __future__ import annotations

from datetime import UTC

import grpc

from modelplane.observability.adapters.peer_call import DEFAULT_TIMEOUT_S, call_peer
from modelplane.observability.lineage import ReportInfo
from modelplane.validator.v1 import validator_pb2 as vpb
from modelplane.validator.v1 import validator_pb2_grpc as vpb_grpc

_STATUS = {vpb.CHECK_STATUS_PASS: "PASS", vpb.CHECK_STATUS_WARN: "WARN",
           vpb.CHECK_STATUS_FAIL: "FAIL"}


class ValidatorReports:
    """:class:`~modelplane.observability.lineage.ValidationReports` over the validator."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = vpb_grpc.ValidatorServiceStub(channel)
        self._timeout = timeout_s

    async def report(self, report_id: str) -> ReportInfo:
        r = await call_peer(self._stub.GetValidationReport,
                            vpb.GetValidationReportRequest(id=report_id),
                            f"GetValidationReport {report_id}", self._timeout)
        source = r.dataset.WhichOneof("source")
        return ReportInfo(
            r.id, _STATUS.get(r.status, ""), r.summary,
            getattr(r.dataset, source) if source else "", r.dataset_sha256, r.row_count,
            r.baseline_version,
            r.create_time.ToDatetime(tzinfo=UTC) if r.HasField("create_time") else None)


__all__ = ["ValidatorReports"]
