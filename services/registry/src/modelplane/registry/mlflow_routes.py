"""Which role each route of MLflow's REST API needs, from MLflow's own route table.

The MLflow plugin (``mlflow_app.py``) matches every request against the Flask
app's URL map - the routes MLflow itself registers - and asks ``route_role``:

- safe methods (GET, HEAD, OPTIONS) need **reader**;
- a non-safe method on a route in ``READ_ROUTES`` (searches, ``graphql``) needs reader;
- on a route in ``WRITER_ROUTES`` (what data scientists do: runs, experiments,
  traces, artifacts, registering models, tags, aliases) **writer** - the same least
  role as the route's gRPC twin, where it has one;
- anything else needs **admin**: the deletes of models and versions (``DeleteModel``
  is admin over gRPC), webhooks, MLflow's AI gateway and secrets, workspaces, and
  every route a new MLflow release adds until it is listed here. Deny by default:
  an upgrade cannot open a write path silently (``tests/security`` walks the route
  table with a reader key).

Routes are keyed by their rule without the ``/api/<v>/`` or ``/ajax-api/<v>/``
prefix, e.g. ``mlflow/registered-models/alias``, with the HTTP method.
"""

from __future__ import annotations

import re
from typing import Any

from modelplane.kit.auth import Role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_VERSIONED = re.compile(r"^.*?/(?:ajax-)?api/\d+\.\d+/?")


def route_key(rule: str) -> str:
    """``/ajax-api/2.0/mlflow/registered-models/delete`` -> ``mlflow/registered-models/delete``."""
    match = _VERSIONED.match(rule)
    return rule[match.end():] if match else rule.lstrip("/")


#: Non-safe methods that only read.
READ_ROUTES: frozenset[tuple[str, str]] = frozenset((key, "POST") for key in (
    "graphql",
    "mlflow/experiments/search", "mlflow/experiments/search-datasets",
    "mlflow/runs/search", "mlflow/logged-models/search",
    "mlflow/registered-models/get-latest-versions",
    "mlflow/traces/search", "mlflow/traces/batchGetInfos", "mlflow/traces/metrics",
    "mlflow/traces/calculate-filter-correlation", "mlflow/datasets/search",
    "mlflow/issues/search", "mlflow/prompt-optimization/jobs/search",
    "mlflow/artifacts/presigned-download-url",
))

_POST = "POST"
WRITER_ROUTES: frozenset[tuple[str, str]] = frozenset({
    *((f"mlflow/experiments/{v}", _POST) for v in (
        "create", "delete", "restore", "update", "set-experiment-tag", "delete-experiment-tag")),
    *((f"mlflow/runs/{v}", _POST) for v in (
        "create", "delete", "restore", "update", "set-tag", "delete-tag", "log-batch",
        "log-inputs", "log-metric", "log-model", "log-parameter", "outputs")),
    ("mlflow/logged-models", _POST), ("mlflow/logged-models/<model_id>", "PATCH"),
    ("mlflow/logged-models/<model_id>/params", _POST),
    ("mlflow/logged-models/<model_id>/tags", "PATCH"),
    ("mlflow/logged-models/<model_id>/tags/<tag_key>", "DELETE"),
    # the registry: the same least role as CreateModel, UpdateModel, SetAlias, ...
    ("mlflow/registered-models/create", _POST), ("mlflow/registered-models/rename", _POST),
    ("mlflow/registered-models/update", "PATCH"), ("mlflow/registered-models/set-tag", _POST),
    ("mlflow/registered-models/delete-tag", "DELETE"),
    ("mlflow/registered-models/alias", _POST), ("mlflow/registered-models/alias", "DELETE"),
    ("mlflow/model-versions/create", _POST), ("mlflow/model-versions/update", "PATCH"),
    ("mlflow/model-versions/set-tag", _POST), ("mlflow/model-versions/delete-tag", "DELETE"),
    ("mlflow/model-versions/transition-stage", _POST),
    # traces and assessments (MLflow 2 and 3 spellings)
    ("mlflow/traces", _POST), ("mlflow/traces/<request_id>", "PATCH"),
    ("mlflow/traces/<request_id>/tags", "PATCH"), ("mlflow/traces/<request_id>/tags", "DELETE"),
    ("mlflow/traces/<trace_id>/tags", "PATCH"), ("mlflow/traces/<trace_id>/tags", "DELETE"),
    ("mlflow/traces/delete-traces", _POST), ("mlflow/traces/link-prompts", _POST),
    ("mlflow/traces/link-to-run", _POST), ("mlflow/traces/<trace_id>/assessments", _POST),
    ("mlflow/traces/<trace_id>/assessments/<assessment_id>", "PATCH"),
    ("mlflow/traces/<trace_id>/assessments/<assessment_id>", "DELETE"),
    # evaluation datasets
    ("mlflow/datasets/create", _POST), ("mlflow/datasets/<dataset_id>/records", _POST),
    ("mlflow/datasets/<dataset_id>/records", "DELETE"), ("mlflow/datasets/<dataset_id>", "DELETE"),
    ("mlflow/datasets/<dataset_id>/tags", "PATCH"),
    ("mlflow/datasets/<dataset_id>/tags/<key>", "DELETE"),
    ("mlflow/datasets/<dataset_id>/add-experiments", _POST),
    ("mlflow/datasets/<dataset_id>/remove-experiments", _POST),
    # artifacts: uploads (the artifact proxy and the UI's upload)
    ("mlflow/upload-artifact", _POST), ("mlflow/artifacts/presigned-upload-url", _POST),
    ("mlflow-artifacts/artifacts/<path:artifact_path>", "PUT"),
    ("mlflow-artifacts/mpu/create/<path:artifact_path>", _POST),
    ("mlflow-artifacts/mpu/complete/<path:artifact_path>", _POST),
    ("mlflow-artifacts/mpu/abort/<path:artifact_path>", _POST),
})

#: Written down for the reader; any route in neither list above is admin anyway.
ADMIN_ROUTES: frozenset[tuple[str, str]] = frozenset({
    ("mlflow/registered-models/delete", "DELETE"), ("mlflow/model-versions/delete", "DELETE"),
    ("mlflow/logged-models/<model_id>", "DELETE"),
    ("mlflow-artifacts/artifacts/<path:artifact_path>", "DELETE"),
    ("mlflow/webhooks", _POST), ("mlflow/webhooks/<webhook_id>", "PATCH"),
    ("mlflow/webhooks/<webhook_id>", "DELETE"), ("mlflow/webhooks/<webhook_id>/test", _POST),
})


def route_role(method: str, rule: str | None) -> Role:
    """Least role for ``method`` on a Flask rule (None: a path MLflow does not route)."""
    if method in SAFE_METHODS:
        return Role.READER
    if rule is None:
        return Role.ADMIN
    key = (route_key(rule), method)
    if key in READ_ROUTES:
        return Role.READER
    if key in WRITER_ROUTES:
        return Role.WRITER
    return Role.ADMIN


class RouteTable:
    """Matches a request path against the Flask app's URL map (MLflow's routes)."""

    def __init__(self, flask_app: Any) -> None:
        self._adapter = flask_app.url_map.bind("modelplane.invalid")

    def rule(self, method: str, path: str) -> str | None:
        try:
            rule, _ = self._adapter.match(path, method=method, return_rule=True)
        except Exception:  # noqa: BLE001 - NotFound, MethodNotAllowed, RequestRedirect
            return None
        return str(rule.rule)

    def role(self, method: str, path: str) -> Role:
        return route_role(method, self.rule(method, path))


def mutating_rules(flask_app: Any) -> list[tuple[str, str]]:
    """Every (rule, method) MLflow routes with a non-safe method (for tests and docs)."""
    out = set()
    for rule in flask_app.url_map.iter_rules():
        for method in (rule.methods or set()) - SAFE_METHODS:
            out.add((str(rule.rule), method))
    return sorted(out)


def request_classes() -> dict[tuple[str, str], type]:
    """(route key, method) -> the protobuf request message MLflow parses the body into."""
    from google.protobuf.message import Message
    from mlflow.server.handlers import get_endpoints

    out: dict[tuple[str, str], type] = {}
    for path, handler, methods in get_endpoints(get_handler=lambda cls: cls):
        if isinstance(handler, type) and issubclass(handler, Message):
            for method in methods:
                out[(route_key(path), method)] = handler
    return out
