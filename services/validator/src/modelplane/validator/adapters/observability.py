"""BaselineSink over the observability contract (modelplane.observability.v1 SetBaseline)."""

from __future__ import annotations

import grpc
import pandas as pd
import pyarrow as pa

from modelplane.api.v1 import types_pb2
from modelplane.kit.status import raise_from_rpc_error
from modelplane.observability.v1 import observability_pb2 as ob
from modelplane.observability.v1 import observability_pb2_grpc as ob_grpc

from ..report import ValidationReport

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
            columns=ob.ImportColumns(prediction_id="prediction_id", prediction_time="prediction_time",
                                     prediction="prediction", actual="actual", score_prefix="score_",
                                     tag_prefix="tag_", features=features))
        try:
            await self._stub.SetBaseline(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)
