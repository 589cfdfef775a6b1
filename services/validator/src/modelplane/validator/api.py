"""gRPC servicer: ValidatorService requests handed to the domain (:mod:`.service`),
answers built by :mod:`.convert`.

Errors are domain ``ModelplaneError``s; the kit's interceptor maps them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc

from modelplane.kit import paging
from modelplane.kit.auth import current_principal
from modelplane.validator.convert import (
    CHECK_STATUS_FROM_PB,
    RUN_STATE_FROM_PB,
    check_descriptor,
    report_to_pb,
    request_from_pb,
    run_to_pb,
)
from modelplane.validator.service import ValidationService
from modelplane.validator.v1 import validator_pb2 as pb
from modelplane.validator.v1 import validator_pb2_grpc as pb_grpc


class ValidatorServicer(pb_grpc.ValidatorServiceServicer):
    def __init__(self, service: Callable[[], ValidationService]) -> None:
        self._service = service

    async def CreateValidationRun(self, request: pb.CreateValidationRunRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ValidationRun:
        run = await self._service().create_run(request_from_pb(request.validation_run),
                                               creator=current_principal().name)
        return run_to_pb(run)

    async def GetValidationRun(self, request: pb.GetValidationRunRequest,
                               context: grpc.aio.ServicerContext) -> pb.ValidationRun:
        return run_to_pb(await self._service().get_run(request.id))

    async def ListValidationRuns(
            self, request: pb.ListValidationRunsRequest,
            context: grpc.aio.ServicerContext) -> pb.ListValidationRunsResponse:
        runs, token = await self._service().list_runs(
            model=request.model, version=request.version,
            state=RUN_STATE_FROM_PB.get(request.state),
            size=request.page_size, token=request.page_token)
        return pb.ListValidationRunsResponse(validation_runs=[run_to_pb(r) for r in runs],
                                             next_page_token=token)

    async def WatchValidationRun(
            self, request: pb.WatchValidationRunRequest,
            context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ValidationRun]:
        async for run in self._service().watch_run(request.id):
            yield run_to_pb(run)

    async def CancelValidationRun(self, request: pb.CancelValidationRunRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ValidationRun:
        return run_to_pb(await self._service().cancel_run(request.id))

    async def GetValidationReport(self, request: pb.GetValidationReportRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ValidationReport:
        return report_to_pb(await self._service().get_report(request.id))

    async def ListValidationReports(
            self, request: pb.ListValidationReportsRequest,
            context: grpc.aio.ServicerContext) -> pb.ListValidationReportsResponse:
        reports, token = await self._service().list_reports(
            model=request.model, version=request.version,
            status=CHECK_STATUS_FROM_PB.get(request.status),
            size=request.page_size, token=request.page_token)
        return pb.ListValidationReportsResponse(
            validation_reports=[report_to_pb(r, full=request.full_view) for r in reports],
            next_page_token=token)

    async def ListChecks(self, request: pb.ListChecksRequest,
                         context: grpc.aio.ServicerContext) -> pb.ListChecksResponse:
        checks = self._service().list_checks()
        page, token = paging.page_of(checks, request.page_size, request.page_token,
                                     {"kind": "checks"})
        return pb.ListChecksResponse(checks=[check_descriptor(c) for c in page],
                                     next_page_token=token)
