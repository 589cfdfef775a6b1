"""A validation run: what was asked, where it is, how it ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from modelplane.validator.policy import Policy
from modelplane.validator.report import CheckStatus


class RunState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


@dataclass
class DatasetRef:
    """A featurestore Dataset id or a parquet URI (exactly one)."""

    dataset: str = ""
    parquet_uri: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"dataset": self.dataset} if self.dataset else {"parquet_uri": self.parquet_uri}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> DatasetRef | None:
        if not data:
            return None
        return cls(dataset=data.get("dataset", ""), parquet_uri=data.get("parquet_uri", ""))

    def __str__(self) -> str:
        return f"dataset {self.dataset}" if self.dataset else self.parquet_uri


@dataclass
class RunProgress:
    checks_total: int = 0
    checks_done: int = 0
    current_check: str = ""
    fraction: float = 0.0
    stage: str = ""


@dataclass
class RunError:
    """Why a run FAILED, as a status code name, message, reason and metadata."""

    code: str
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ValidationRun:
    id: str
    model: str
    version: str
    dataset: DatasetRef
    policy: Policy
    policy_text: str = ""
    baseline_version: str = ""
    skip_baseline: bool = False
    training_dataset: DatasetRef | None = None
    state: RunState = RunState.PENDING
    progress: RunProgress = field(default_factory=RunProgress)
    report_id: str = ""
    report_status: CheckStatus | None = None
    error: RunError | None = None
    resolved_baseline_version: str = ""
    registry_attached: bool = False
    observability_baseline_set: bool = False
    notes: list[str] = field(default_factory=list)
    creator: str = ""
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
