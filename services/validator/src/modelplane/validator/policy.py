"""The validation policy: which checks, their limits, and how to read the dataset.

A policy arrives as a ``ValidationPolicy`` message or as YAML / JSON text with
the same field names::

    label_column: churned
    slice_columns: [region]
    protected_attributes: [gender]
    checks:
      - metrics                       # catalog defaults
      - check: bias
        thresholds: {max_demographic_parity_difference: 0.05}
        warn_thresholds: {max_demographic_parity_difference: 0.02}
      - check: stress
        params: {duration_s: "0.2"}

Parsing only checks shape and types; names are checked against the catalog
and the dataset by ``ValidationPlan`` before any work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.validator.report import TaskType

DEFAULT_SEED = 42
DEFAULT_SAMPLE_ROWS = 20_000


@dataclass
class CheckConfig:
    check: str
    thresholds: dict[str, float] = field(default_factory=dict)
    warn_thresholds: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Policy:
    label_column: str
    checks: list[CheckConfig] = field(default_factory=list)
    task: TaskType | None = None
    positive_class: str = ""
    slice_columns: list[str] = field(default_factory=list)
    protected_attributes: list[str] = field(default_factory=list)
    feature_columns: list[str] = field(default_factory=list)
    event_timestamp_column: str = ""
    feature_timestamp_columns: list[str] = field(default_factory=list)
    entity_columns: list[str] = field(default_factory=list)
    seed: int = DEFAULT_SEED
    sample_rows: int = DEFAULT_SAMPLE_ROWS

    def to_dict(self) -> dict[str, Any]:
        return {
            "label_column": self.label_column,
            "checks": [
                {"check": c.check, "thresholds": dict(c.thresholds),
                 "warn_thresholds": dict(c.warn_thresholds), "params": dict(c.params)}
                for c in self.checks
            ],
            "task": self.task.value if self.task else "",
            "positive_class": self.positive_class,
            "slice_columns": list(self.slice_columns),
            "protected_attributes": list(self.protected_attributes),
            "feature_columns": list(self.feature_columns),
            "event_timestamp_column": self.event_timestamp_column,
            "feature_timestamp_columns": list(self.feature_timestamp_columns),
            "entity_columns": list(self.entity_columns),
            "seed": self.seed,
            "sample_rows": self.sample_rows,
        }


_LIST_FIELDS = ("slice_columns", "protected_attributes", "feature_columns",
                "feature_timestamp_columns", "entity_columns")
_STR_FIELDS = ("label_column", "positive_class", "event_timestamp_column")
_KNOWN = {"checks", "task", "seed", "sample_rows", *_LIST_FIELDS, *_STR_FIELDS}


def parse_policy_text(text: str, field_name: str = "policy_text") -> Policy:
    """Parse YAML or JSON (JSON is YAML) policy text."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidArgument(
            f"{field_name}: not valid YAML or JSON: {str(exc).splitlines()[0]}",
            reason="INVALID_POLICY", field_violations=[FieldViolation(field_name, str(exc))],
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{field_name}: expected a mapping at the top level",
                              reason="INVALID_POLICY",
                              field_violations=[FieldViolation(field_name, "expected a mapping")])
    return policy_from_dict(data, "policy")  # same field paths as the structured policy


def policy_from_dict(data: dict[str, Any], field_name: str = "policy") -> Policy:
    """Build a Policy from plain data, collecting every shape error at once."""
    violations: list[FieldViolation] = []

    def bad(path: str, description: str) -> None:
        violations.append(FieldViolation(f"{field_name}.{path}", description))

    for key in data:
        if key not in _KNOWN:
            bad(str(key), f"unknown policy field {key!r}; known: {', '.join(sorted(_KNOWN))}")
    label = data.get("label_column") or ""
    if not isinstance(label, str) or not label:
        bad("label_column", "required: the column with the true label")
        label = ""
    policy = Policy(label_column=label)
    for name in _STR_FIELDS[1:]:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, (str, int, float, bool)):
            bad(name, "expected a string")
        else:
            setattr(policy, name, str(value))
    for name in _LIST_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            bad(name, "expected a list of column names")
        else:
            setattr(policy, name, list(value))
    task = data.get("task")
    if task:
        norm = str(task).lower().removeprefix("task_type_")
        try:
            policy.task = TaskType(norm)
        except ValueError:
            bad("task", f"unknown task {task!r}; expected classification or regression")
    for name in ("seed", "sample_rows"):
        value = data.get(name)
        if value is None or value == 0:
            continue
        try:
            number = int(value)
            if number < 0:
                raise ValueError
            setattr(policy, name, number)
        except (TypeError, ValueError):
            bad(name, "expected a non-negative integer")
    policy.checks = _parse_checks(data.get("checks"), bad)
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise InvalidArgument(f"{first.field}: {first.description}{more}",
                              reason="INVALID_POLICY", field_violations=violations)
    return policy


def _parse_checks(raw: Any, bad: Any) -> list[CheckConfig]:
    if raw is None:
        return []
    items: list[tuple[str, Any]]
    if isinstance(raw, dict):  # {metrics: {...}, bias: null}
        items = [(str(k), {"check": k, **(v or {})} if isinstance(v, dict) or v is None else v)
                 for k, v in raw.items()]
    elif isinstance(raw, list):
        items = [(str(i), v) for i, v in enumerate(raw)]
    else:
        bad("checks", "expected a list of checks")
        return []
    configs = []
    for key, item in items:
        path = f"checks[{key}]"
        if isinstance(item, str):
            configs.append(CheckConfig(check=item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("check"), str):
            bad(path, "expected a check name or a mapping with `check`")
            continue
        cfg = CheckConfig(check=item["check"])
        for extra in set(item) - {"check", "thresholds", "warn_thresholds", "params"}:
            bad(f"{path}.{extra}", "unknown field; expected thresholds, warn_thresholds, params")
        for kind in ("thresholds", "warn_thresholds"):
            values = item.get(kind) or {}
            if not isinstance(values, dict):
                bad(f"{path}.{kind}", "expected a mapping of threshold name to number")
                continue
            for name, limit in values.items():
                try:
                    getattr(cfg, kind)[str(name)] = float(limit)
                except (TypeError, ValueError):
                    bad(f"{path}.{kind}.{name}", f"expected a number, got {limit!r}")
        params = item.get("params") or {}
        if not isinstance(params, dict):
            bad(f"{path}.params", "expected a mapping of parameter name to value")
        else:
            cfg.params = {str(k): str(v) for k, v in params.items()}
        configs.append(cfg)
    return configs
