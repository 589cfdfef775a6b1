"""MLflow models into BentoML's model store, and out again as :class:`ServableModel` s.

A scikit-learn MLflow model is saved with BentoML's native ``bentoml.sklearn``
flavour (no pyfunc schema enforcement on the hot path); anything else goes
through ``bentoml.mlflow.import_model`` and runs as an MLflow pyfunc. A version
already in the store (tag ``<model>:v<version>``) is loaded without touching
the registry's artifacts again, if it came from the same source and run; one
that did not (another registry sharing the store, a model registered again
after a delete) is imported again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any

from modelplane.kit.errors import FailedPrecondition, Unavailable
from modelplane.serving.model_source import ResolvedModel, is_transient
from modelplane.serving.servable_model import (
    ColumnSpec,
    InputSignature,
    PredictionWorkers,
    ServableModel,
)

log = logging.getLogger("modelplane.serving.bento_models")

_TYPE_KINDS = {"double": "float", "float": "float", "long": "int", "integer": "int",
               "boolean": "bool", "string": "string", "binary": "string", "datetime": "int"}


def bento_tag(model: str, version: str) -> str:
    """A valid BentoML tag for a registered model version (``fraud:v3``)."""
    name = re.sub(r"[^a-z0-9_.-]", "-", model.lower()).strip("-_.") or "model"
    if name != model:
        name = f"{name[:54]}-{hashlib.sha1(model.encode()).hexdigest()[:8]}"
    return f"{name[:63]}:v{version}"


def _signature_from_mlflow(sig: Any) -> InputSignature:
    if sig is None or sig.inputs is None:
        return InputSignature()
    schema = sig.inputs
    if schema.is_tensor_spec():
        spec = schema.inputs[0]
        shape = tuple(spec.shape or ())
        return InputSignature(n_features=int(shape[-1]) if len(shape) >= 2 and shape[-1] > 0
                              else None)
    if not schema.has_input_names():
        return InputSignature(n_features=len(schema.inputs))
    cols = tuple(ColumnSpec(c.name, _TYPE_KINDS.get(str(c.type.name), "float"))
                 for c in schema.inputs)
    return InputSignature(columns=cols)


class BentoModelRepository:
    """Imports resolved model versions into BentoML's store and loads them to serve."""

    def __init__(self, *, workers_per_model: int = 4) -> None:
        self._workers = workers_per_model
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, tag: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tag, threading.Lock())

    def import_model(self, resolved: ResolvedModel) -> str:
        """Put the version into BentoML's model store (once); return its tag."""
        import bentoml
        from bentoml.exceptions import NotFound as BentoNotFound

        tag = bento_tag(resolved.model, resolved.version)
        with self._lock(tag):
            try:
                stored = bentoml.models.get(tag)
            except BentoNotFound:
                stored = None
            if stored is not None:
                held = stored.info.metadata
                if (held.get("source_uri"), held.get("run_id")) == (resolved.source_uri,
                                                                    resolved.run_id):
                    return tag
                # The same name and version from another registry, or from a model deleted
                # and registered again (MLflow then counts versions from 1 again): serving
                # it would answer with another model's predictions.
                log.warning("BentoML's store holds %s from %s (run %s), not %s v%s from %s "
                            "(run %s): importing it again", tag, held.get("source_uri"),
                            held.get("run_id"), resolved.model, resolved.version,
                            resolved.source_uri, resolved.run_id)
                bentoml.models.delete(tag)
            import mlflow.models

            try:
                info = mlflow.models.get_model_info(resolved.source_uri)
            except Exception as exc:  # noqa: BLE001 - the artifact is unreadable
                if is_transient(exc):  # MLflow's server did not answer: worth a retry
                    raise Unavailable(
                        f"the MLflow server holding {resolved.model} v{resolved.version} "
                        f"({resolved.source_uri}) did not answer: {exc}",
                        reason="MODEL_ARTIFACT_UNREACHABLE",
                        metadata={"model": resolved.model,
                                  "version": resolved.version}) from None
                raise FailedPrecondition(
                    f"cannot read the MLflow model of {resolved.model} v{resolved.version} at "
                    f"{resolved.source_uri}: {exc}", reason="MODEL_ARTIFACT_UNREADABLE",
                    metadata={"model": resolved.model, "version": resolved.version}) from None
            signature = _signature_from_mlflow(info.signature)
            metadata = {"registered_model": resolved.model, "version": resolved.version,
                        "source_uri": resolved.source_uri, "run_id": resolved.run_id,
                        "signature": signature.to_dict()}
            if "sklearn" in info.flavors:
                import mlflow.sklearn

                estimator = mlflow.sklearn.load_model(resolved.source_uri)
                if signature.width is None and hasattr(estimator, "n_features_in_"):
                    names = getattr(estimator, "feature_names_in_", None)
                    signature = (InputSignature(columns=tuple(ColumnSpec(str(n), "float")
                                                              for n in names))
                                 if names is not None
                                 else InputSignature(n_features=int(estimator.n_features_in_)))
                    metadata["signature"] = signature.to_dict()
                bentoml.sklearn.save_model(tag, estimator, metadata=metadata,
                                           signatures={"predict": {"batchable": True}},
                                           labels={"source": "mlflow"})
            else:
                bentoml.mlflow.import_model(tag, resolved.source_uri, metadata=metadata,
                                            labels={"source": "mlflow"})
            log.info("imported %s v%s into BentoML's model store as %s",
                     resolved.model, resolved.version, tag)
            return tag

    def load(self, resolved: ResolvedModel) -> ServableModel:
        """Import if needed, then load the version from BentoML's store to serve it."""
        import bentoml

        tag = self.import_model(resolved)
        stored = bentoml.models.get(tag)
        meta = stored.info.metadata
        sig = meta.get("signature")
        signature = InputSignature.from_dict(sig if isinstance(sig, dict) else {})
        if stored.info.module.endswith("sklearn"):
            estimator = bentoml.sklearn.load_model(stored)
            predict_fn = estimator.predict
            wants_df = getattr(estimator, "feature_names_in_", None) is not None
        else:
            pyfunc = bentoml.mlflow.load_model(stored)
            predict_fn = pyfunc.predict
            wants_df = bool(signature.columns)
        return ServableModel(
            model=resolved.model, version=resolved.version, source_uri=resolved.source_uri,
            bento_model_tag=str(stored.tag), signature=signature, predict_fn=predict_fn,
            wants_dataframe=wants_df, load_time=datetime.now(UTC),
            workers=PredictionWorkers(str(stored.tag).replace(":", "-"), self._workers))
