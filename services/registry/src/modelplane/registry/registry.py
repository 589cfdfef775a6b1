"""The model registry's behaviour: lineage, gated aliases, audit, events, resolve.

Transport-neutral: ``api.py`` calls these methods with plain values and the
caller's ``Principal``; errors are the kit's ``ModelplaneError`` classes.
MLflow calls are blocking and run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from modelplane.kit import paging
from modelplane.kit.auth import Principal
from modelplane.kit.errors import FailedPrecondition, NotFound
from modelplane.registry import identifiers as ids
from modelplane.registry import version_tags as vt
from modelplane.registry.events import EventHub
from modelplane.registry.history import PendingEvent, RegistryHistory
from modelplane.registry.mlflow_store import MlflowModelStore
from modelplane.registry.model import (
    Alias,
    AliasChange,
    ChangeOrigin,
    EventType,
    Model,
    ModelEvent,
    ModelVersion,
    Page,
    ResolvedModel,
    ValidationStatus,
    ValidationSummary,
)
from modelplane.registry.promotion import PromotionGate
from modelplane.registry.resolver import ModelUriResolver

log = logging.getLogger("modelplane.registry")
R = TypeVar("R")

MODEL_FIELDS = ("description", "tags")
VERSION_FIELDS = ("description", "tags", "lineage.dataset_id", "lineage.feature_refs",
                  "lineage.code_version")


def _mlflow_token(position: object) -> str:
    """The position in a models/versions page token: MLflow's own page token."""
    if not isinstance(position, str):
        raise TypeError(position)
    return position


def _history_id(position: object) -> int:
    """The position in an alias-history page token: the last row id returned."""
    if isinstance(position, bool) or not isinstance(position, int):
        raise TypeError(position)
    return position


def _mask(paths: Sequence[str], allowed: Sequence[str], field: str = "update_mask") -> set[str]:
    if not paths:
        return set(allowed)
    bad = [p for p in paths if p not in allowed]
    if bad:
        raise ids.invalid(field, f"cannot update {', '.join(bad)}; updatable: "
                          f"{', '.join(allowed)}", "UPDATE_MASK_INVALID")
    return set(paths)


class ModelRegistry:
    def __init__(self, store: MlflowModelStore, history: RegistryHistory, hub: EventHub,
                 gate: PromotionGate, tracking_uri: str, cache_size: int = 10000) -> None:
        self.store = store
        self.history = history
        self.hub = hub
        self.gate = gate
        self.tracking_uri = tracking_uri
        self.resolver = ModelUriResolver(hub, self._load_resolved, cache_size)

    @staticmethod
    async def _run(fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.to_thread(fn, *args)

    async def _publish(self, *events: PendingEvent) -> None:
        await self._run(self.history.record_events, list(events))
        await self.hub.sync()

    async def _publish_change(self, change: AliasChange) -> AliasChange:
        recorded = await self._run(self.history.record_alias_change, change)
        await self.hub.sync()
        return recorded

    # models ------------------------------------------------------------------------
    async def create_model(self, name: str, description: str, tags: dict[str, str],
                           principal: Principal) -> Model:
        ids.model_name(name, "model.name")
        ids.user_tags(tags, "model.tags")
        model = await self._run(self.store.create_model, name, description, tags)
        await self._publish(PendingEvent(EventType.MODEL_CREATED, name, principal=principal.name))
        return model

    async def get_model(self, name: str) -> Model:
        ids.model_name(name)
        changes = await self._run(self.history.latest_alias_changes, name)
        return await self._run(self.store.get_model, name, changes)

    async def list_models(self, name_prefix: str, tags: dict[str, str], page_size: int,
                          page_token: str) -> Page[Model]:
        size = paging.page_size(page_size)
        query = {"kind": "models", "prefix": name_prefix, "tags": tags}
        token = paging.decode_page_token(page_token, query, shape=_mlflow_token)
        clauses = []
        if name_prefix:
            ids.filter_value(name_prefix, "name_prefix")
            clauses.append(f"name LIKE '{name_prefix}%'")
        for key, value in sorted(tags.items()):
            if not ids._TAG_KEY.match(key) or "`" in key:
                raise ids.invalid(f"tags[{key!r}]", "not a valid tag key", "FILTER_INVALID")
            ids.filter_value(value, f"tags[{key!r}]")
            clauses.append(f"tags.`{key}` = '{value}'")
        rms, next_token = await self._run(self.store.list_models, " AND ".join(clauses), size,
                                          token)
        models = []
        for rm in rms:
            if name_prefix and not rm.name.startswith(name_prefix):
                continue  # '_' is a LIKE wildcard
            latest = max((int(v.version) for v in (rm.latest_versions or [])), default=None)
            models.append(await self._run(self.store.to_model, rm, latest))
        return Page(models, paging.encode_page_token(next_token or None, query))

    async def update_model(self, name: str, description: str, tags: dict[str, str],
                           mask: Sequence[str], principal: Principal) -> Model:
        ids.model_name(name, "model.name")
        fields = _mask(mask, MODEL_FIELDS)
        if "tags" in fields:
            ids.user_tags(tags, "model.tags")
        await self._run(self.store.update_model, name,
                        description if "description" in fields else None,
                        tags if "tags" in fields else None)
        await self._publish(PendingEvent(EventType.MODEL_UPDATED, name, principal=principal.name))
        return await self.get_model(name)

    async def delete_model(self, name: str, force: bool, principal: Principal) -> None:
        ids.model_name(name)
        rm = await self._run(self.store.get_registered_model, name)
        aliases = {a: int(v) for a, v in (rm.aliases or {}).items()}
        protected = sorted(a for a in aliases if self.gate.is_protected(a))
        if protected and not force:
            raise FailedPrecondition(
                f"model {name!r} has protected alias(es) {', '.join(protected)}; delete them "
                "first or set force", reason="PROTECTED_ALIAS_IN_USE",
                metadata={"model": name, "aliases": ",".join(protected)})
        await self._run(self.store.delete_model, name)
        for alias, version in sorted(aliases.items()):
            await self._run(self.history.record_alias_change, AliasChange(
                model_name=name, alias=alias, from_version=version, to_version=0,
                principal=principal.name, origin=ChangeOrigin.GRPC,
                reason="model deleted" + (" (force)" if force else "")))
        await self._publish(PendingEvent(EventType.MODEL_DELETED, name, principal=principal.name))

    # versions ----------------------------------------------------------------------
    async def create_version(self, *, model_name: str, run_id: str, artifact_path: str,
                             source: str, dataset_id: str, feature_refs: Sequence[str],
                             code_version: str, description: str, tags: dict[str, str],
                             principal: Principal) -> ModelVersion:
        ids.model_name(model_name, "model_name")
        ids.user_tags(tags)
        if dataset_id:
            ids.dataset_id(dataset_id)
        refs = ids.feature_refs(list(feature_refs))
        if code_version:
            ids.code_version(code_version)
        if run_id:
            ids.run_id(run_id)
        logged_model_id = ""
        if source:
            if source.startswith("models:/"):
                logged_model_id = ids.logged_model_id(source[len("models:/"):].rstrip("/"))
            elif source.startswith("runs:/"):
                src_run, _, path = source[len("runs:/"):].partition("/")
                ids.run_id(src_run, "source")
                ids.artifact_path(path, "source")
                if run_id and run_id != src_run:
                    raise ids.invalid("source", f"source names run {src_run!r} but run_id is "
                                      f"{run_id!r}", "SOURCE_RUN_MISMATCH")
                run_id = src_run
            else:
                raise ids.invalid("source", f"{source!r}: expected models:/m-<id> or "
                                  "runs:/<run_id>/<path>", "SOURCE_INVALID")
        elif not run_id:
            raise ids.invalid("run_id", "run_id (or source) is required: the run that logged "
                              "the model", "RUN_ID_MISSING")
        mv = await self._run(self._create_version_sync, model_name, run_id,
                             artifact_path or "model", source, logged_model_id, dataset_id,
                             refs, code_version, description, tags, principal)
        await self.hub.sync()
        return mv

    def _create_version_sync(self, model_name: str, run_id: str, artifact_path: str,
                             source: str, logged_model_id: str, dataset_id: str,
                             refs: tuple[str, ...], code_version: str, description: str,
                             tags: dict[str, str], principal: Principal) -> ModelVersion:
        # MLflow's SQL store resolves a models:/ source with a default-URI client of its
        # own; the registry hands it the logged model's artifact location instead.
        if logged_model_id:
            lm = self.store.get_logged_model(logged_model_id)
            if run_id and lm.source_run_id and lm.source_run_id != run_id:
                raise ids.invalid("source", f"logged model {logged_model_id} belongs to run "
                                  f"{lm.source_run_id}, not {run_id}", "SOURCE_RUN_MISMATCH")
            run_id = run_id or lm.source_run_id or ""
            source = lm.artifact_location
        run = self.store.get_run(run_id) if run_id else None
        if not source and run is not None:
            ids.artifact_path(artifact_path)
            lm = self.store.find_logged_model(run, artifact_path)
            if lm is not None:
                logged_model_id, source = lm.model_id, lm.artifact_location
            elif self.store.run_has_model(run, artifact_path):
                source = f"runs:/{run_id}/{artifact_path}"
            else:
                raise NotFound(f"run {run_id!r} has no model logged under {artifact_path!r}",
                               reason="LOGGED_MODEL_NOT_FOUND",
                               metadata={"run_id": run_id, "artifact_path": artifact_path})
        run_tags = dict(run.data.tags) if run is not None else {}
        experiment = run.info.experiment_id if run is not None else ""
        derived = vt.lineage_tags_from_run(run_tags, experiment)
        given = vt.lineage_tags(dataset_id, refs, code_version, experiment)
        all_tags = {**tags, **derived, **given, vt.CREATED_BY: principal.name}
        created = self.store.ensure_model(model_name)
        mv = self.store.create_version(model_name, source, run_id, all_tags, description,
                                       logged_model_id or None)
        pending = []
        if created:
            pending.append(PendingEvent(EventType.MODEL_CREATED, model_name,
                                        principal=principal.name))
        pending.append(PendingEvent(EventType.VERSION_CREATED, model_name, mv.version,
                                    principal=principal.name))
        self.history.record_events(pending)
        return mv

    async def get_version(self, model_name: str, version: int) -> ModelVersion:
        ids.model_name(model_name, "model_name")
        ids.version_number(version)
        return await self._run(self.store.get_version, model_name, version)

    async def list_versions(self, *, model_name: str, run_id: str, dataset_id: str,
                            validation_status: ValidationStatus | None, page_size: int,
                            page_token: str) -> Page[ModelVersion]:
        size = paging.page_size(page_size)
        query = {"kind": "versions", "model": model_name, "run": run_id, "ds": dataset_id,
                 "vs": validation_status.value if validation_status else ""}
        token = paging.decode_page_token(page_token, query, shape=_mlflow_token)
        clauses = []
        if model_name != "-":
            ids.model_name(model_name, "model_name")
            await self._run(self.store.get_registered_model, model_name)  # NOT_FOUND
            clauses.append(f"name = '{model_name}'")
        if run_id:
            clauses.append(f"run_id = '{ids.run_id(run_id)}'")
        if dataset_id:
            clauses.append(f"tags.`{vt.DATASET_ID}` = '{ids.dataset_id(dataset_id, 'dataset_id')}'")
        if validation_status is not None:
            clauses.append(f"tags.`{vt.VALIDATION_STATUS}` = '{validation_status.value}'")
        items, next_token = await self._run(self.store.search_versions, " AND ".join(clauses),
                                            size, token)
        return Page(items, paging.encode_page_token(next_token or None, query))

    async def update_version(self, *, model_name: str, version: int, description: str,
                             tags: dict[str, str], dataset_id: str,
                             feature_refs: Sequence[str], code_version: str,
                             mask: Sequence[str], principal: Principal) -> ModelVersion:
        ids.model_name(model_name, "model_version.model_name")
        ids.version_number(version, "model_version.version")
        fields = _mask(mask, VERSION_FIELDS)
        current = await self._run(self.store.get_mlflow_version, model_name, version)
        current_tags = dict(current.tags or {})
        set_tags: dict[str, str] = {}
        delete: list[str] = []
        if "tags" in fields:
            ids.user_tags(tags, "model_version.tags")
            delete += [k for k in vt.user_visible_tags(current_tags) if k not in tags]
            set_tags.update(tags)
        for path, key, value in (
                ("lineage.dataset_id", vt.DATASET_ID, dataset_id),
                ("lineage.code_version", vt.CODE_VERSION, code_version)):
            if path not in fields:
                continue
            if value:
                (ids.dataset_id if key == vt.DATASET_ID else ids.code_version)(
                    value, f"model_version.{path}")
                set_tags[key] = value
            elif key in current_tags:
                delete.append(key)
        if "lineage.feature_refs" in fields:
            refs = ids.feature_refs(list(feature_refs), "model_version.lineage.feature_refs")
            set_tags.update(vt.lineage_tags("", refs, "", ""))
            if not refs and vt.FEATURE_REFS in current_tags:
                delete.append(vt.FEATURE_REFS)
        await self._run(self.store.update_version, model_name, version,
                        description if "description" in fields else None, set_tags, delete)
        await self._publish(PendingEvent(EventType.VERSION_UPDATED, model_name, version,
                                         principal=principal.name))
        return await self.get_version(model_name, version)

    async def attach_validation(self, *, model_name: str, version: int, report_id: str,
                                status: ValidationStatus | None, report_uri: str, summary: str,
                                principal: Principal) -> ModelVersion:
        ids.model_name(model_name, "model_name")
        ids.version_number(version)
        if not report_id:
            raise ids.invalid("validation.report_id", "the validator's report id is required",
                              "REPORT_ID_MISSING")
        if len(report_id) > 256:
            raise ids.invalid("validation.report_id", "at most 256 characters", "REPORT_ID_INVALID")
        if status is None:
            raise ids.invalid("validation.status", "status must be PASS, WARN or FAIL",
                              "VALIDATION_STATUS_MISSING")
        if len(report_uri) > 2048 or len(summary) > 4000:
            raise ids.invalid("validation.report_uri" if len(report_uri) > 2048
                              else "validation.summary", "too long", "VALIDATION_INVALID")
        self.gate.check_validation_source(principal, model=model_name, version=version)
        summary_obj = ValidationSummary(report_id=report_id, status=status,
                                        report_uri=report_uri, summary=summary,
                                        attach_time=datetime.now(UTC), attached_by=principal.name)
        await self._run(self.store.get_mlflow_version, model_name, version)  # NOT_FOUND first
        await self._run(self.store.update_version, model_name, version, None,
                        vt.validation_tags(summary_obj), [])
        await self._publish(PendingEvent(EventType.VALIDATION_ATTACHED, model_name, version,
                                         principal=principal.name, validation=summary_obj))
        return await self.get_version(model_name, version)

    # aliases -----------------------------------------------------------------------
    async def set_alias(self, *, model_name: str, alias: str, version: int,
                        override_reason: str, principal: Principal) -> Alias:
        ids.model_name(model_name, "model_name")
        ids.alias_name(alias)
        ids.version_number(version)
        if len(override_reason) > 2000:
            raise ids.invalid("override_reason", "at most 2000 characters", "REASON_TOO_LONG")
        rm = await self._run(self.store.get_registered_model, model_name)
        target = await self._run(self.store.get_version, model_name, version)
        decision = self.gate.decide(model=model_name, version=version, alias=alias,
                                    validation=target.validation,
                                    override_reason=override_reason, principal=principal)
        previous = int((rm.aliases or {}).get(alias, 0))
        await self._run(self.store.set_alias, model_name, alias, version)
        change = await self._publish_change(AliasChange(
            model_name=model_name, alias=alias, from_version=previous, to_version=version,
            principal=principal.name, origin=ChangeOrigin.GRPC, reason=override_reason.strip(),
            override=decision.override, validation=target.validation))
        return Alias(model_name=model_name, alias=alias, version=version,
                     protected=decision.protected, update_time=change.change_time,
                     updated_by=principal.name)

    async def get_alias(self, model_name: str, alias: str) -> Alias:
        ids.model_name(model_name, "model_name")
        ids.alias_name(alias)
        model = await self.get_model(model_name)
        for a in model.aliases:
            if a.alias == alias:
                return a
        raise NotFound(f"alias {alias!r} of model {model_name!r} not found",
                       reason="ALIAS_NOT_FOUND", metadata={"model": model_name, "alias": alias})

    async def delete_alias(self, *, model_name: str, alias: str, reason: str,
                           principal: Principal) -> None:
        ids.model_name(model_name, "model_name")
        ids.alias_name(alias)
        rm = await self._run(self.store.get_registered_model, model_name)
        current = (rm.aliases or {}).get(alias)
        if current is None:
            raise NotFound(f"alias {alias!r} of model {model_name!r} not found",
                           reason="ALIAS_NOT_FOUND", metadata={"model": model_name, "alias": alias})
        await self._run(self.store.delete_alias, model_name, alias)
        await self._publish_change(AliasChange(
            model_name=model_name, alias=alias, from_version=int(current), to_version=0,
            principal=principal.name, origin=ChangeOrigin.GRPC, reason=reason.strip()))

    async def list_alias_changes(self, model_name: str, alias: str, page_size: int,
                                 page_token: str) -> Page[AliasChange]:
        size = paging.page_size(page_size)
        query = {"kind": "alias_changes", "model": model_name, "alias": alias}
        before = paging.decode_page_token(page_token, query, shape=_history_id)
        if model_name != "-":
            ids.model_name(model_name, "model_name")
        if alias:
            ids.alias_name(alias)
        rows = await self._run(self.history.list_alias_changes,
                               None if model_name == "-" else model_name, alias or None,
                               size + 1, before)
        if model_name != "-" and not rows and before is None:
            await self._run(self.store.get_registered_model, model_name)  # NOT_FOUND if unknown
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, paging.encode_page_token(rows[-1].id if more else None, query))

    # resolve and watch -----------------------------------------------------------------
    def _load_resolved(self, ref: ids.ModelUri) -> ResolvedModel:
        if ref.alias:
            mv = self.store.get_version_by_alias(ref.model_name, ref.alias)
        else:
            mv = self.store.get_version(ref.model_name, ref.version)
        return ResolvedModel(
            model_version=mv, alias=ref.alias,
            version_uri=f"models:/{mv.model_name}/{mv.version}",
            download_uri=self.store.download_uri(mv.model_name, mv.version),
            tracking_uri=self.tracking_uri)

    async def resolve(self, uri: str) -> ResolvedModel:
        return await self.resolver.resolve(uri)

    def watch(self, model_names: Sequence[str], types: Sequence[EventType],
              after_sequence: int | None) -> AsyncIterator[ModelEvent]:
        for i, name in enumerate(model_names):
            ids.model_name(name, f"model_names[{i}]")
        if after_sequence is not None and after_sequence < 0:
            raise ids.invalid("after_sequence", "must not be negative", "SEQUENCE_INVALID")
        return self.hub.watch(model_names, types, after_sequence)
