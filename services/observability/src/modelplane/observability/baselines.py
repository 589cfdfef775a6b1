"""What an analysis compares against: a :class:`Reference` (a filter, or a
version's baseline) and the stored :class:`Baseline` of a model version (its
reference records and the metrics its validation reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from modelplane.observability import metrics as M
from modelplane.observability.records import Environment, EvaluationFilter

#: the store's document kind for baselines
BASELINE_KIND = "baseline"


def baseline_key(model: str, version: str) -> str:
    """A baseline's document key in the store."""
    return f"{model}\x1f{version}"


@dataclass(frozen=True)
class Reference:
    """What an analysis compares against: a filter, or a version's baseline."""

    filter: EvaluationFilter | None = None
    baseline: tuple[str, str] | None = None


@dataclass
class Baseline:
    model: str
    version: str
    reference: EvaluationFilter | None = None
    metrics: dict[M.Metric, float] = field(default_factory=dict)
    validation_report_id: str = ""
    update_time: datetime | None = None
    record_count: int = 0

    def reference_filter(self) -> EvaluationFilter:
        return self.reference or EvaluationFilter(self.model, (self.version,),
                                                  Environment.VALIDATION)

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "version": self.version,
                "reference": self.reference.to_dict() if self.reference else None,
                "metrics": {int(k): v for k, v in self.metrics.items()},
                "validation_report_id": self.validation_report_id,
                "update_time": self.update_time.isoformat() if self.update_time else None}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Baseline:
        ref = d.get("reference")
        metrics = d.get("metrics") or {}
        assert isinstance(metrics, dict)
        ut = d.get("update_time")
        return cls(str(d["model"]), str(d["version"]),
                   EvaluationFilter.from_dict(ref) if isinstance(ref, dict) else None,
                   {M.Metric(int(k)): float(v) for k, v in metrics.items()},
                   str(d.get("validation_report_id") or ""),
                   datetime.fromisoformat(str(ut)) if ut else None)
