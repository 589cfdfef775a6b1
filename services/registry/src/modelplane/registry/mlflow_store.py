"""MLflow as the store of models, versions, aliases and tags.

The registry owns MLflow's backend database, so it talks to it in-process with
MLflow's own SQL store (``MlflowClient`` on the backend URI) - the same code the
``mlflow server`` workers run, on the same database, hence one source of truth
without an HTTP hop. Everything here is blocking; callers run it in a thread.
MLflow errors become ``ModelplaneError`` with a message naming what is missing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelplane.kit.errors import (
    AlreadyExists,
    InvalidArgument,
    ModelplaneError,
    NotFound,
    Unavailable,
)
from modelplane.registry import version_tags as vt
from modelplane.registry.model import (
    Alias,
    Lineage,
    Model,
    ModelVersion,
    Signature,
    SignatureField,
    VersionStatus,
)

log = logging.getLogger("modelplane.registry.mlflow")
_LOGGED_MODEL_IN_PATH = re.compile(r"/models/(m-[0-9a-f]+)/artifacts/?$")


def _token_text(token: str | bytes | None) -> str:
    """MLflow's SQL store hands out page tokens as bytes."""
    if isinstance(token, bytes):
        return token.decode()
    return token or ""


def _ts(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def _fields(spec_json: str) -> tuple[SignatureField, ...]:
    if not spec_json:
        return ()
    try:
        items = json.loads(spec_json)
    except ValueError:
        return ()
    out = []
    for item in items if isinstance(items, list) else []:
        tensor = item.get("tensor-spec") or {}
        out.append(SignatureField(
            name=str(item.get("name", "")), type=str(item.get("type", "")),
            required=bool(item.get("required", True)),
            tensor_dtype=str(tensor.get("dtype", "")),
            tensor_shape=tuple(int(x) for x in tensor.get("shape", []) or [])))
    return tuple(out)


def signature_from_mlmodel(text: str) -> Signature | None:
    import yaml

    doc = yaml.safe_load(text) or {}
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        return None
    inputs, outputs = sig.get("inputs") or "", sig.get("outputs") or ""
    params = sig.get("params") or ""
    return Signature(inputs=_fields(inputs), outputs=_fields(outputs), inputs_json=inputs,
                     outputs_json=outputs, params_json=params)


@contextlib.contextmanager
def mlflow_errors(what: str, **names: Any) -> Iterator[None]:
    """Translate MlflowException into the kit's errors, naming ``what`` was asked for."""
    from mlflow.exceptions import MlflowException

    meta = {k: str(v) for k, v in names.items()}
    try:
        yield
    except ModelplaneError:
        raise
    except MlflowException as exc:
        code = exc.error_code
        message = exc.message
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"{what} not found", reason=f"{what.split()[0].upper()}_NOT_FOUND",
                           metadata=meta) from None
        if code == "RESOURCE_ALREADY_EXISTS":
            raise AlreadyExists(f"{what} already exists",
                                reason=f"{what.split()[0].upper()}_ALREADY_EXISTS",
                                metadata=meta) from None
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
            raise InvalidArgument(f"{what}: {message}", reason="MLFLOW_REJECTED",
                                  metadata=meta) from None
        log.warning("MLflow error on %s: %s %s", what, code, message)
        raise Unavailable(f"MLflow store error on {what}: {code}", reason="MLFLOW_ERROR",
                          metadata=meta) from None
    except Exception as exc:  # database unreachable and the like
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg")):
            log.warning("MLflow backend error on %s: %s", what, exc)
            raise Unavailable(f"MLflow backend store unavailable ({type(exc).__name__})",
                              reason="MLFLOW_BACKEND_UNAVAILABLE", metadata=meta) from None
        raise


class MlflowModelStore:
    def __init__(self, backend_store_uri: str, artifacts_destination: str,
                 protected_aliases: frozenset[str]) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=backend_store_uri, registry_uri=backend_store_uri)
        self.artifacts_destination = artifacts_destination
        self.protected_aliases = protected_aliases
        self._signatures: dict[str, Signature | None] = {}
        self._lock = threading.Lock()

    # models -----------------------------------------------------------------------
    def to_model(self, rm: Any, latest: int | None = None,
               changes: dict[str, Any] | None = None) -> Model:
        if latest is None:
            latest = self.latest_version(rm.name)
        changes = changes or {}
        aliases = tuple(sorted((
            Alias(model_name=rm.name, alias=a, version=int(v),
                  protected=a in self.protected_aliases,
                  update_time=changes[a].change_time if a in changes else None,
                  updated_by=changes[a].principal if a in changes else "")
            for a, v in (rm.aliases or {}).items()), key=lambda x: x.alias))
        return Model(name=rm.name, description=rm.description or "",
                     tags=vt.user_visible_tags(rm.tags or {}), aliases=aliases,
                     latest_version=latest, create_time=_ts(rm.creation_timestamp),
                     update_time=_ts(rm.last_updated_timestamp))

    def latest_version(self, name: str) -> int:
        with mlflow_errors(f"model {name!r}", model=name):
            page = self.client.search_model_versions(f"name = '{name}'", max_results=1,
                                                     order_by=["version_number DESC"])
        return int(page[0].version) if page else 0

    def get_registered_model(self, name: str) -> Any:
        with mlflow_errors(f"model {name!r}", model=name):
            return self.client.get_registered_model(name)

    def get_model(self, name: str, changes: dict[str, Any] | None = None) -> Model:
        return self.to_model(self.get_registered_model(name), changes=changes)

    def create_model(self, name: str, description: str, tags: dict[str, str]) -> Model:
        with mlflow_errors(f"model {name!r}", model=name):
            rm = self.client.create_registered_model(name, tags=tags or None,
                                                     description=description or None)
        return self.to_model(rm, latest=0)

    def ensure_model(self, name: str) -> bool:
        """Create the model if missing; True when it was created."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
            return True
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":
                return False
            with mlflow_errors(f"model {name!r}", model=name):
                raise

    def list_models(self, filter_string: str, page_size: int,
                    token: str | None) -> tuple[list[Any], str]:
        with mlflow_errors("models"):
            page = self.client.search_registered_models(
                filter_string=filter_string or None, max_results=page_size,
                order_by=["name ASC"], page_token=token)
        return list(page), _token_text(page.token)

    def update_model(self, name: str, description: str | None,
                     tags: dict[str, str] | None) -> None:
        with mlflow_errors(f"model {name!r}", model=name):
            rm = self.client.get_registered_model(name)
            if description is not None:
                self.client.update_registered_model(name, description=description)
            if tags is not None:
                for key in vt.user_visible_tags(rm.tags or {}):
                    if key not in tags:
                        self.client.delete_registered_model_tag(name, key)
                for key, value in tags.items():
                    self.client.set_registered_model_tag(name, key, value)

    def delete_model(self, name: str) -> None:
        with mlflow_errors(f"model {name!r}", model=name):
            self.client.delete_registered_model(name)

    # runs and logged models -------------------------------------------------------------
    def get_run(self, run_id: str) -> Any:
        with mlflow_errors(f"run {run_id!r}", run_id=run_id):
            return self.client.get_run(run_id)

    def find_logged_model(self, run: Any, name: str) -> Any | None:
        with mlflow_errors(f"logged model {name!r} of run {run.info.run_id!r}",
                           run_id=run.info.run_id):
            found = self.client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{name}'",
                max_results=1)
        return found[0] if found else None

    def get_logged_model(self, model_id: str) -> Any:
        with mlflow_errors(f"logged model {model_id!r}", logged_model_id=model_id):
            return self.client.get_logged_model(model_id)

    def run_has_model(self, run: Any, path: str) -> bool:
        """An MLflow 2 style model under the run's artifacts (read from storage directly)."""
        storage = self._storage_uri(run.info.artifact_uri or "")
        if storage is None:
            return False
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        try:
            listed = get_artifact_repository(storage).list_artifacts(path)
        except Exception:  # noqa: BLE001 - unreadable means no model we can register
            return False
        return any(f.path.rstrip("/").endswith("MLmodel") for f in listed)

    # versions ------------------------------------------------------------------------
    def create_version(self, name: str, source: str, run_id: str, tags: dict[str, str],
                       description: str, logged_model_id: str | None) -> ModelVersion:
        with mlflow_errors(f"model {name!r}", model=name):
            mv = self.client.create_model_version(
                name, source, run_id=run_id or None, tags=tags, description=description or None,
                await_creation_for=0, model_id=logged_model_id)
        return self.to_version(mv)

    def get_mlflow_version(self, name: str, version: int) -> Any:
        with mlflow_errors(f"version {version} of model {name!r}", model=name, version=version):
            self.get_registered_model(name)  # NOT_FOUND names the model when it is missing
            return self.client.get_model_version(name, str(version))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self.to_version(self.get_mlflow_version(name, version))

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        rm = self.get_registered_model(name)
        if alias not in (rm.aliases or {}):
            raise NotFound(f"alias {alias!r} of model {name!r} not found",
                           reason="ALIAS_NOT_FOUND", metadata={"model": name, "alias": alias})
        return self.get_version(name, int(rm.aliases[alias]))

    def search_versions(self, filter_string: str, page_size: int,
                        token: str | None) -> tuple[list[ModelVersion], str]:
        with mlflow_errors("model versions"):
            page = self.client.search_model_versions(
                filter_string=filter_string or None, max_results=page_size,
                order_by=["name ASC", "version_number DESC"], page_token=token)
        return [self.to_version(mv) for mv in page], _token_text(page.token)

    def update_version(self, name: str, version: int, description: str | None,
                       set_tags: dict[str, str], delete_tags: list[str]) -> None:
        with mlflow_errors(f"version {version} of model {name!r}", model=name, version=version):
            if description is not None:
                self.client.update_model_version(name, str(version), description=description)
            for key in delete_tags:
                self.client.delete_model_version_tag(name, str(version), key)
            for key, value in set_tags.items():
                self.client.set_model_version_tag(name, str(version), key, value)

    def download_uri(self, name: str, version: int) -> str:
        with mlflow_errors(f"version {version} of model {name!r}", model=name, version=version):
            return str(self.client.get_model_version_download_uri(name, str(version)))

    # aliases -----------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> None:
        with mlflow_errors(f"version {version} of model {name!r}", model=name, version=version):
            self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        with mlflow_errors(f"alias {alias!r} of model {name!r}", model=name, alias=alias):
            self.client.delete_registered_model_alias(name, alias)

    # conversion ---------------------------------------------------------------------
    def _storage_uri(self, uri: str) -> str | None:
        """Where an artifact URI is stored, readable from this process."""
        if uri.startswith("mlflow-artifacts:"):
            rel = uri[len("mlflow-artifacts:"):].lstrip("/")
            dest = self.artifacts_destination
            if "://" not in dest:
                dest = Path(dest).resolve().as_uri()
            return f"{dest.rstrip('/')}/{rel}"
        if uri.startswith(("file:", "s3:", "gs:", "wasbs:", "/")):
            return uri
        return None

    def signature(self, source: str, run_id: str, logged_model_id: str) -> Signature | None:
        key = logged_model_id or source
        with self._lock:
            if key in self._signatures:
                return self._signatures[key]
        sig = None
        try:
            location: str | None = None
            if logged_model_id:
                location = self.get_logged_model(logged_model_id).artifact_location
            elif source.startswith("runs:/") and run_id:
                rel = source[len("runs:/"):].split("/", 1)[1] if "/" in source[6:] else ""
                location = f"{self.get_run(run_id).info.artifact_uri}/{rel}"
            elif source:
                location = source
            storage = self._storage_uri(location) if location else None
            if storage:
                from mlflow.store.artifact.artifact_repository_registry import (
                    get_artifact_repository,
                )

                with tempfile.TemporaryDirectory() as tmp:
                    path = get_artifact_repository(storage).download_artifacts("MLmodel", tmp)
                    sig = signature_from_mlmodel(Path(path).read_text())
        except Exception as exc:  # noqa: BLE001 - a missing signature is not an error
            log.info("no signature for %s: %s", key, exc)
        with self._lock:
            if len(self._signatures) > 10000:
                self._signatures.clear()
            self._signatures[key] = sig
        return sig

    def to_version(self, mv: Any) -> ModelVersion:
        tags = dict(mv.tags or {})
        run_id = mv.run_id or ""
        model_id = getattr(mv, "model_id", None) or ""
        source = mv.source or ""
        if not model_id and source.startswith("models:/m-"):
            model_id = source[len("models:/"):].split("/")[0]
        if not model_id:
            found = _LOGGED_MODEL_IN_PATH.search(source)
            model_id = found.group(1) if found else ""
        run_tags: dict[str, str] = {}
        run_experiment = ""
        needs_run = run_id and not all(k in tags for k in (vt.EXPERIMENT_ID, vt.DATASET_ID,
                                                          vt.FEATURE_REFS, vt.CODE_VERSION))
        if needs_run:
            try:
                run = self.client.get_run(run_id)
                run_tags, run_experiment = dict(run.data.tags), run.info.experiment_id
            except Exception as exc:  # noqa: BLE001 - the run may have been deleted
                log.info("run %s of version %s/%s unreadable: %s", run_id, mv.name, mv.version,
                         exc)
        lineage: Lineage = vt.lineage_from_tags(
            run_id, tags, run_tags, run_experiment,
            self.signature(source, run_id, model_id))
        status = {"READY": VersionStatus.READY,
                  "PENDING_REGISTRATION": VersionStatus.PENDING_REGISTRATION,
                  "FAILED_REGISTRATION": VersionStatus.FAILED_REGISTRATION}.get(
                      str(mv.status), VersionStatus.READY)
        return ModelVersion(
            model_name=mv.name, version=int(mv.version), description=mv.description or "",
            source=source, status=status, aliases=tuple(sorted(mv.aliases or ())),
            tags=vt.user_visible_tags(tags), lineage=lineage,
            validation=vt.validation_from_tags(tags),
            creator=tags.get(vt.CREATED_BY) or mv.user_id or "", logged_model_id=model_id,
            create_time=_ts(mv.creation_timestamp), update_time=_ts(mv.last_updated_timestamp))
