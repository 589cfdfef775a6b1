"""Lookup plans for the online path: which views, keys, features and store fields a
list of feature refs (or a feature service) reads, cached per registry generation.

A plan is built from the Feast registry on a cache miss (blocking: run it in a worker
thread) and reused until the definitions change; ``cached`` is the cheap check the
event loop makes first.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from modelplane.featurestore.definitions import ValueKind
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.online_lookup import LookupPlan, ViewRead
from modelplane.kit.errors import FieldViolation, InvalidArgument

PlanKey = tuple[tuple[str, ...], str, bool]


class LookupPlans:
    def __init__(self, repository: FeatureRepository, project: str) -> None:
        self.repository = repository
        self.project = project
        self._plans: dict[PlanKey, LookupPlan] = {}
        self._plans_generation = -1
        self._plan_lock = threading.Lock()

    def cached(self, refs: tuple[str, ...], service: str,
               full_names: bool) -> LookupPlan | None:
        """The lookup plan for these refs if one is cached for the current definitions."""
        if self._plans_generation != self.repository.generation:
            return None
        return self._plans.get((refs, service, full_names))

    def plan_for(self, refs: tuple[str, ...], service: str, full_names: bool) -> LookupPlan:
        """The lookup plan for these refs, built from the registry on a cache miss (blocking)."""
        plan = self.cached(refs, service, full_names)
        if plan is not None:
            return plan
        with self._plan_lock:
            generation = self.repository.generation
            if self._plans_generation != generation:
                self._plans = {}
                self._plans_generation = generation
            plan = self._build(refs, service, full_names, generation)
            self._plans[(refs, service, full_names)] = plan
            return plan

    def _build(self, refs: Sequence[str], service: str, full_names: bool,
               generation: int) -> LookupPlan:
        from feast.infra.online_stores.helpers import _mmh3, compute_table_id

        features = self.repository.resolve_refs(list(refs), service)
        views = self.repository.feast_views()
        kinds = self.repository.key_kinds()
        names = [f"{f.view}__{f.feature}" if full_names else f.feature for f in features]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InvalidArgument(
                f"feature name {dup!r} is requested from two feature views; set full_feature_names",
                reason="FEATURE_NAME_COLLISION", metadata={"feature": dup},
                field_violations=[FieldViolation("full_feature_names", "needed: names collide")])
        by_view: dict[str, list[int]] = {}
        for i, f in enumerate(features):
            by_view.setdefault(f.view, []).append(i)
        reads = []
        join_keys: dict[str, ValueKind] = {}
        for view_name, positions in by_view.items():
            view = views[view_name]
            keys = tuple(c.name for c in view.entity_columns)
            for k in keys:
                join_keys[k] = kinds.get(k, ValueKind.INT64)
            feats = tuple(features[i].feature for i in positions)
            reads.append(ViewRead(
                view_name=view_name, join_keys=keys, key_kinds=tuple(join_keys[k] for k in keys),
                features=feats, positions=tuple(positions),
                all_features=set(feats) == {f.name for f in view.features},
                ttl_seconds=view.ttl.total_seconds() if view.ttl else 0.0,
                table_id=compute_table_id(self.project, view, False),
                redis_fields=(*(_mmh3(f"{view_name}:{f}") for f in feats),
                              f"_ts:{view_name}".encode())))
        return LookupPlan(names=tuple(names), refs=tuple(f.ref for f in features),
                          views=tuple(reads), join_keys=join_keys, generation=generation)
