"""Observability (modelplane.observability.v1): the baseline handed over after a run
(``SetBaseline``) and a previous version's baseline read back for the drift checks
(``GetBaseline`` + ``ListRecords``)."""

from __future__ import annotations

import grpc
import pandas as pd
import pyarrow as pa

from modelplane.api.v1 import types_pb2
from modelplane.kit.status import raise_from_rpc_error
from modelplane.observability.v1 import observability_pb2 as ob
from modelplane.observability.v1 import observability_pb2_grpc as ob_grpc
from modelplane.validator.checks.base import PreviousValidation
from modelplane.validator.report import ValidationReport

_METRICS = {
    "accuracy": ob.METRIC_ACCURACY, "precision": ob.METRIC_PRECISION, "recall": ob.METRIC_RECALL,
    "f1": ob.METRIC_F1, "roc_auc": ob.METRIC_ROC_AUC, "log_loss": ob.METRIC_LOG_LOSS,
    "mae": ob.METRIC_MAE, "rmse": ob.METRIC_RMSE, "mape": ob.METRIC_MAPE,
}


def to_arrow_ipc(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class ObservabilityBaselineSink:
    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = 300.0) -> None:
        self._stub = ob_grpc.ObservabilityServiceStub(channel)
        self._timeout = timeout_s

    async def set_baseline(self, report: ValidationReport, records: pd.DataFrame) -> None:
        metrics = []
        try:
            overall = report.check("metrics")
            metrics = [ob.MetricValue(metric=_METRICS[m.name], value=m.value, has_value=True)
                       for m in overall.measurements if m.name in _METRICS and not m.subject]
        except KeyError:
            pass
        features = [c for c in records.columns if c not in ("prediction_id", "prediction_time",
                    "prediction", "actual") and not c.startswith(("score_", "tag_"))]
        request = ob.SetBaselineRequest(
            baseline=ob.Baseline(model=report.model, version=report.version, metrics=metrics,
                                 validation_report_id=report.id),
            records=types_pb2.TableData(arrow_ipc=to_arrow_ipc(records)),
            columns=ob.ImportColumns(prediction_id="prediction_id",
                                     prediction_time="prediction_time",
                                     prediction="prediction", actual="actual",
                                     score_prefix="score_",
                                     tag_prefix="tag_", features=features))
        try:
            await self._stub.SetBaseline(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)


def _plain(value: types_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime()
    return getattr(value, kind)


class ObservabilityBaselineReader:
    """A previous version's validation records, read back from its observability baseline
    (``GetBaseline`` for the reference filter, then ``ListRecords`` page by page)."""

    PAGE = 1000  # ListRecords' largest page

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = 60.0) -> None:
        self._stub = ob_grpc.ObservabilityServiceStub(channel)
        self._timeout = timeout_s

    async def previous_validation(self, model: str, version: str,
                                  max_rows: int) -> tuple[PreviousValidation | None, str]:
        try:
            baseline = await self._stub.GetBaseline(
                ob.GetBaselineRequest(model=model, version=version), timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None, f"version {version} has no baseline in observability"
            return None, (f"version {version}'s baseline could not be read from observability: "
                          f"{err.code().name} {err.details()}")
        reference = baseline.reference if baseline.HasField("reference") else ob.EvaluationFilter(
            model=model, versions=[version], environment=ob.ENVIRONMENT_VALIDATION)
        rows: list[dict[str, object]] = []
        token = ""
        try:
            while len(rows) < max_rows:
                page = await self._stub.ListRecords(ob.ListRecordsRequest(
                    filter=reference, page_size=min(self.PAGE, max_rows - len(rows)),
                    page_token=token), timeout=self._timeout)
                for record in page.records:
                    row: dict[str, object] = {k: _plain(v) for k, v in record.features.items()}
                    row["prediction"] = _plain(record.prediction)
                    row.update({f"score_{k}": v for k, v in record.scores.items()})
                    rows.append(row)
                token = page.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as err:
            return None, (f"version {version}'s baseline records could not be read: "
                          f"{err.code().name} {err.details()}")
        if not rows:
            return None, f"version {version}'s baseline has no records"
        return PreviousValidation(version=version, frame=pd.DataFrame(rows),
                                  record_count=int(baseline.record_count) or len(rows)), ""
