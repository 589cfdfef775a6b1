"""Batch jobs: offline scoring of a featurestore dataset or a parquet file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from modelplane.serving.deployment import ModelTarget


class BatchJobState(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass
class BatchJob:
    id: str
    deployment: str
    target: ModelTarget | None = None
    dataset: str = ""
    parquet_uri: str = ""
    output_uri: str = ""
    logging_enabled: bool = True
    state: BatchJobState = BatchJobState.PENDING
    error_message: str = ""
    rows_total: int = 0
    rows_scored: int = 0
    model: str = ""
    model_version: str = ""
    create_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    end_time: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        for key in ("create_time", "start_time", "end_time"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchJob:
        data = dict(data)
        data["state"] = BatchJobState(data["state"])
        data["target"] = ModelTarget(**data["target"]) if data.get("target") else None
        for key in ("create_time", "start_time", "end_time"):
            data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
        return cls(**data)
