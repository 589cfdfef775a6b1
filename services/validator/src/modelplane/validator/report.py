"""What a validation produces: check results and the report, as plain dataclasses.

Transport-neutral: ``api.py`` turns these into ``modelplane.validator.v1``
messages, ``store.py`` into JSON rows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class CheckStatus(enum.IntEnum):
    """Outcome of one check or a report; ordered so that ``max`` is the worst."""

    PASS = 1
    SKIPPED = 2
    WARN = 3
    FAIL = 4
    ERROR = 5

    @property
    def failed(self) -> bool:
        return self in (CheckStatus.FAIL, CheckStatus.ERROR)


class Bound(enum.Enum):
    """Which side of a limit fails: LOWER = value must be >= limit, UPPER = <= limit."""

    LOWER = "lower"
    UPPER = "upper"


class TaskType(enum.Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass
class Measurement:
    """One measured number; ``subject`` says what it is about (feature, group, batch...)."""

    name: str
    value: float
    subject: str = ""
    baseline_value: float | None = None


@dataclass
class ThresholdOutcome:
    """A threshold as applied to the worst measured value."""

    name: str
    bound: Bound
    limit: float
    measured: float
    status: CheckStatus
    subject: str = ""
    warn_limit: float | None = None


@dataclass
class SliceResult:
    column: str
    value: str
    row_count: int
    measurements: list[Measurement] = field(default_factory=list)
    status: CheckStatus = CheckStatus.PASS


@dataclass
class CheckResult:
    check: str
    status: CheckStatus
    message: str = ""
    measurements: list[Measurement] = field(default_factory=list)
    thresholds: list[ThresholdOutcome] = field(default_factory=list)
    slices: list[SliceResult] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0

    def measurement(self, name: str, subject: str = "") -> Measurement:
        """The measurement ``name`` about ``subject`` (KeyError when absent)."""
        for m in self.measurements:
            if m.name == name and m.subject == subject:
                return m
        raise KeyError(f"{self.check}: no measurement {name!r} subject {subject!r}")


def overall_status(results: list[CheckResult]) -> CheckStatus:
    """FAIL when any check failed or errored, else WARN when any warned, else PASS."""
    worst = CheckStatus.PASS
    for r in results:
        if r.status.failed:
            return CheckStatus.FAIL
        if r.status == CheckStatus.WARN:
            worst = CheckStatus.WARN
    return worst


def summarize(results: list[CheckResult]) -> str:
    """One line for people: ``2 checks failed: bias, leakage; 1 warned: stress``."""
    failed = [r.check for r in results if r.status.failed]
    warned = [r.check for r in results if r.status == CheckStatus.WARN]
    skipped = [r.check for r in results if r.status == CheckStatus.SKIPPED]
    parts = []
    if failed:
        plural = "s" if len(failed) > 1 else ""
        parts.append(f"{len(failed)} check{plural} failed: {', '.join(failed)}")
    if warned:
        parts.append(f"{len(warned)} warned: {', '.join(warned)}")
    if skipped:
        parts.append(f"{len(skipped)} skipped: {', '.join(skipped)}")
    passed = sum(1 for r in results if r.status == CheckStatus.PASS)
    if not parts:
        return f"all {passed} checks passed"
    return f"{passed} passed; " + "; ".join(parts)


@dataclass
class ValidationReport:
    """A saved report: the results and everything needed to reproduce them."""

    id: str
    run_id: str
    model: str
    version: str
    status: CheckStatus
    summary: str
    checks: list[CheckResult]
    task: TaskType
    row_count: int
    dataset: dict[str, str]              # {"dataset": id} or {"parquet_uri": uri}
    policy: dict                          # the policy applied, defaults filled (Policy.to_dict)
    baseline_version: str = ""
    training_dataset: dict[str, str] | None = None
    dataset_sha256: str = ""
    model_uri: str = ""
    create_time: datetime | None = None
    duration_s: float = 0.0
    report_uri: str = ""

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.check == name:
                return c
        raise KeyError(name)
