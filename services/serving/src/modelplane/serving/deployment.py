"""Deployments: the domain objects behind the ServingService contract, and their validation.

A :class:`Deployment` names a registered model and says how live traffic is
answered: weighted :class:`Route` s (canary / A-B), mirrored shadows, a fallback
chain with a per-deployment timeout and circuit breaker, an optional ensemble,
online features, a sticky key and an access policy. No grpc here.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from modelplane.kit.errors import FieldViolation, InvalidArgument

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ALIAS_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
VERSION_PATTERN = re.compile(r"^[0-9]{1,12}$")
FEATURE_REF_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$")
DEFAULT_ALIAS = "champion"


class EnsembleMethod(str, Enum):
    AVERAGE = "AVERAGE"
    VOTE = "VOTE"
    CHAIN = "CHAIN"


class Access(str, Enum):
    READ = "READ"
    WRITE = "WRITE"
    ADMIN = "ADMIN"


class DeploymentState(str, Enum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ModelTarget:
    """A registered model version by alias (followed) or by version (pinned)."""

    model: str = ""
    alias: str = ""
    version: str = ""

    def resolved_in(self, deployment_model: str) -> ModelTarget:
        return self if self.model else replace(self, model=deployment_model)

    @property
    def key(self) -> str:
        """``name@alias`` or ``name/version``: the identity of a loaded model."""
        return f"{self.model}@{self.alias}" if self.alias else f"{self.model}/{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.key}"

    @property
    def default_label(self) -> str:
        return self.alias if self.alias else f"v{self.version}"


@dataclass(frozen=True)
class Route:
    target: ModelTarget
    weight: float
    label: str = ""


@dataclass(frozen=True)
class CircuitBreakerSettings:
    error_rate_threshold: float = 0.5
    window_seconds: float = 10.0
    minimum_requests: int = 20
    open_seconds: float = 5.0


@dataclass(frozen=True)
class FallbackPolicy:
    chain: tuple[ModelTarget, ...] = ()
    timeout_seconds: float = 1.0
    circuit_breaker: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)


@dataclass(frozen=True)
class Ensemble:
    method: EnsembleMethod
    members: tuple[ModelTarget, ...]
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class FeatureBinding:
    feature_refs: tuple[str, ...] = ()
    entity_keys: tuple[str, ...] = ()
    full_feature_names: bool = False

    def column_names(self) -> list[str]:
        if self.full_feature_names:
            return [ref.replace(":", "__") for ref in self.feature_refs]
        return [ref.split(":", 1)[1] for ref in self.feature_refs]


@dataclass(frozen=True)
class AccessPolicy:
    infer_principals: tuple[str, ...] = ()
    infer_access: Access = Access.READ
    manage_principals: tuple[str, ...] = ()
    manage_access: Access = Access.WRITE


@dataclass(frozen=True)
class LoadedModelInfo:
    target: ModelTarget
    model: str
    version: str
    source_uri: str
    bento_model_tag: str
    load_time: datetime


@dataclass(frozen=True)
class Deployment:
    name: str
    model: str
    description: str = ""
    routes: tuple[Route, ...] = ()
    shadows: tuple[ModelTarget, ...] = ()
    fallback: FallbackPolicy = field(default_factory=FallbackPolicy)
    ensemble: Ensemble | None = None
    features: FeatureBinding | None = None
    sticky_key: str = ""
    access: AccessPolicy = field(default_factory=AccessPolicy)
    logging_enabled: bool = True
    create_time: datetime | None = None
    update_time: datetime | None = None
    etag: str = ""
    #: the store's change counter at this version's write (0 = never stored): every
    #: create/update/delete takes the next number of one store-wide sequence, so a
    #: replica that serves generation g applies a change only if it is newer
    generation: int = 0

    # --- the targets, with the deployment's model filled in ----------------------------
    def effective_routes(self) -> tuple[Route, ...]:
        routes = self.routes or (Route(ModelTarget(alias=DEFAULT_ALIAS), 100.0),)
        return tuple(
            replace(r, target=r.target.resolved_in(self.model),
                    label=r.label or r.target.default_label)
            for r in routes)

    def fallback_chain(self) -> tuple[ModelTarget, ...]:
        return tuple(t.resolved_in(self.model) for t in self.fallback.chain)

    def shadow_targets(self) -> tuple[ModelTarget, ...]:
        return tuple(t.resolved_in(self.model) for t in self.shadows)

    def ensemble_members(self) -> tuple[ModelTarget, ...]:
        if self.ensemble is None:
            return ()
        return tuple(t.resolved_in(self.model) for t in self.ensemble.members)

    def answering_targets(self) -> list[ModelTarget]:
        """The targets live traffic is routed to: the traffic split's, or the ensemble's
        members (fallbacks answer only on failure, shadows' answers are discarded)."""
        seen: dict[str, ModelTarget] = {}
        for t in ([r.target for r in self.effective_routes()] if self.ensemble is None
                  else list(self.ensemble_members())):
            seen.setdefault(t.key, t)
        return list(seen.values())

    def all_targets(self) -> list[ModelTarget]:
        """Every distinct target the deployment needs loaded, primary ones first."""
        seen: dict[str, ModelTarget] = {}
        for t in ([r.target for r in self.effective_routes()] if self.ensemble is None else [])\
                + list(self.ensemble_members()) + list(self.fallback_chain()) \
                + list(self.shadow_targets()):
            seen.setdefault(t.key, t)
        return list(seen.values())

    # --- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("create_time", "update_time"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        return _jsonable(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        def target(d: dict[str, Any]) -> ModelTarget:
            return ModelTarget(**d)

        fb = data.get("fallback") or {}
        ens = data.get("ensemble")
        feats = data.get("features")
        acc = data.get("access") or {}
        return cls(
            name=data["name"], model=data["model"], description=data.get("description", ""),
            routes=tuple(Route(target(r["target"]), float(r["weight"]), r.get("label", ""))
                         for r in data.get("routes", [])),
            shadows=tuple(target(t) for t in data.get("shadows", [])),
            fallback=FallbackPolicy(
                chain=tuple(target(t) for t in fb.get("chain", [])),
                timeout_seconds=float(fb.get("timeout_seconds", 1.0)),
                circuit_breaker=CircuitBreakerSettings(**(fb.get("circuit_breaker") or {}))),
            ensemble=Ensemble(EnsembleMethod(ens["method"]),
                              tuple(target(t) for t in ens["members"]),
                              tuple(ens.get("weights", ()))) if ens else None,
            features=FeatureBinding(tuple(feats["feature_refs"]), tuple(feats["entity_keys"]),
                                    bool(feats.get("full_feature_names"))) if feats else None,
            sticky_key=data.get("sticky_key", ""),
            access=AccessPolicy(tuple(acc.get("infer_principals", ())),
                                Access(acc.get("infer_access", "READ")),
                                tuple(acc.get("manage_principals", ())),
                                Access(acc.get("manage_access", "WRITE"))),
            logging_enabled=bool(data.get("logging_enabled", True)),
            create_time=_parse_time(data.get("create_time")),
            update_time=_parse_time(data.get("update_time")),
            etag=data.get("etag", ""),
            generation=int(data.get("generation", 0) or 0),
        )


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# --- validation ------------------------------------------------------------------------
def _check_target(t: ModelTarget, path: str, out: list[FieldViolation]) -> None:
    if t.model and not t.model.strip():
        out.append(FieldViolation(f"{path}.model", "must not be blank"))
    if bool(t.alias) == bool(t.version):
        out.append(FieldViolation(path, "set exactly one of alias or version"))
    elif t.alias and not ALIAS_PATTERN.match(t.alias):
        out.append(FieldViolation(f"{path}.alias", f"{t.alias!r} is not a valid alias"))
    elif t.version and not VERSION_PATTERN.match(t.version):
        out.append(FieldViolation(f"{path}.version",
                                  f"{t.version!r} is not a version number"))


def validate_traffic_split(routes: tuple[Route, ...], path: str = "traffic_split",
                           out: list[FieldViolation] | None = None) -> list[FieldViolation]:
    out = [] if out is None else out
    total = 0.0
    labels: set[str] = set()
    for i, r in enumerate(routes):
        _check_target(r.target, f"{path}.routes[{i}].target", out)
        if not math.isfinite(r.weight) or r.weight < 0:
            out.append(FieldViolation(f"{path}.routes[{i}].weight",
                                      "must be a finite number >= 0"))
        else:
            total += r.weight
        label = r.label or r.target.default_label
        if label in labels:
            out.append(FieldViolation(f"{path}.routes[{i}].label",
                                      f"label {label!r} is used by another route"))
        labels.add(label)
    if routes and total <= 0:
        out.append(FieldViolation(f"{path}.routes", "at least one route needs a weight > 0"))
    return out


def validate(d: Deployment) -> None:
    """Raise InvalidArgument listing every bad field of ``d``."""
    out: list[FieldViolation] = []
    if not NAME_PATTERN.match(d.name or ""):
        out.append(FieldViolation("deployment.name",
                                  "must match [a-z0-9][a-z0-9_.-]{0,62}"))
    if not d.model.strip():
        out.append(FieldViolation("deployment.model", "the registered model name is required"))
    validate_traffic_split(d.routes, "deployment.traffic_split", out)
    for i, t in enumerate(d.shadows):
        _check_target(t, f"deployment.shadows[{i}]", out)
    for i, t in enumerate(d.fallback.chain):
        _check_target(t, f"deployment.fallback.chain[{i}]", out)
    if not (0 < d.fallback.timeout_seconds <= 600):
        out.append(FieldViolation("deployment.fallback.timeout", "must be in (0, 600] seconds"))
    cb = d.fallback.circuit_breaker
    if not (0 < cb.error_rate_threshold <= 1):
        out.append(FieldViolation("deployment.fallback.circuit_breaker.error_rate_threshold",
                                  "must be in (0, 1]"))
    if cb.window_seconds <= 0 or cb.open_seconds <= 0:
        out.append(FieldViolation("deployment.fallback.circuit_breaker",
                                  "window and open_duration must be positive"))
    if cb.minimum_requests < 1:
        out.append(FieldViolation("deployment.fallback.circuit_breaker.minimum_requests",
                                  "must be >= 1"))
    if d.ensemble is not None:
        if len(d.ensemble.members) < 2:
            out.append(FieldViolation("deployment.ensemble.members", "needs at least two members"))
        for i, t in enumerate(d.ensemble.members):
            _check_target(t, f"deployment.ensemble.members[{i}]", out)
        if d.ensemble.weights and (
                len(d.ensemble.weights) != len(d.ensemble.members)
                or any(not math.isfinite(w) or w < 0 for w in d.ensemble.weights)
                or sum(d.ensemble.weights) <= 0):
            out.append(FieldViolation("deployment.ensemble.weights",
                                      "one weight >= 0 per member, not all zero"))
        if d.ensemble.weights and d.ensemble.method is not EnsembleMethod.AVERAGE:
            out.append(FieldViolation("deployment.ensemble.weights",
                                      "weights apply to ENSEMBLE_METHOD_AVERAGE only"))
    if d.features is not None and (d.features.feature_refs or d.features.entity_keys):
        if not d.features.feature_refs:
            out.append(FieldViolation("deployment.features.feature_refs",
                                      "required with entity_keys"))
        if not d.features.entity_keys:
            out.append(FieldViolation("deployment.features.entity_keys",
                                      "required with feature_refs"))
        for i, ref in enumerate(d.features.feature_refs):
            if not FEATURE_REF_PATTERN.match(ref):
                out.append(FieldViolation(f"deployment.features.feature_refs[{i}]",
                                          f"{ref!r} is not <feature_view>:<feature>"))
    if d.sticky_key and not re.match(r"^[A-Za-z0-9_.-]{1,128}$", d.sticky_key):
        out.append(FieldViolation("deployment.sticky_key", "letters, digits, _ . - only"))
    if out:
        raise InvalidArgument(
            f"invalid deployment {d.name!r}: " + "; ".join(f"{v.field}: {v.description}"
                                                         for v in out),
            reason="INVALID_DEPLOYMENT", metadata={"deployment": d.name},
            field_violations=out)
