"""Models loaded from MLflow artifacts, and the report artifact written next to them."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import yaml

from modelplane.kit.errors import FailedPrecondition
from modelplane.validator.ports import ModelVersionInfo
from modelplane.validator.report import ValidationReport


class MlflowModelLoader:
    """Downloads a version's artifacts (stock MLflow client) and loads its native flavour.

    scikit-learn models load with ``mlflow.sklearn`` (so ``predict_proba`` is
    there); anything else as an ``mlflow.pyfunc`` model (``predict`` only).
    Downloads are cached per (model, version) under ``cache_dir``.
    """

    def __init__(self, cache_dir: Path, reports_dir: Path, api_key: str | None = None) -> None:
        self._cache = cache_dir
        self._reports = reports_dir
        self._lock = threading.Lock()
        if api_key:
            # The stock client sends it as `Authorization: Bearer`, the registry checks it.
            # The key this adapter was given wins over a token left in the environment.
            os.environ["MLFLOW_TRACKING_TOKEN"] = api_key

    def _download(self, info: ModelVersionInfo) -> Path:
        import mlflow.artifacts

        target = self._cache / info.model / info.version
        done = target / ".complete"
        with self._lock:
            if done.exists():
                return target / "model"
            target.mkdir(parents=True, exist_ok=True)
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=info.download_uri, dst_path=str(target / "download"),
                tracking_uri=info.tracking_uri or None, registry_uri=info.tracking_uri or None)
            link = target / "model"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(Path(local).resolve(), target_is_directory=True)
            done.touch()
            return link

    def load(self, info: ModelVersionInfo) -> Any:
        path = self._download(info)
        mlmodel = path / "MLmodel"
        if not mlmodel.exists():
            raise FailedPrecondition(
                f"model {info.model!r} version {info.version}: "
                f"no MLmodel file at {info.download_uri}",
                reason="MODEL_NOT_LOADABLE",
                metadata={"model": info.model, "version": info.version})
        flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
        if "sklearn" in flavors:
            import mlflow.sklearn

            return mlflow.sklearn.load_model(str(path))
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(str(path))

    def publish_report(self, info: ModelVersionInfo, report: ValidationReport, body: str) -> str:
        """Always a local JSON file; also logged to the version's MLflow run when it has one."""
        self._reports.mkdir(parents=True, exist_ok=True)
        local = self._reports / f"{report.id}.json"
        local.write_text(body)
        if info.run_id and info.tracking_uri:
            from mlflow.tracking import MlflowClient

            MlflowClient(tracking_uri=info.tracking_uri).log_artifact(
                info.run_id, str(local), artifact_path="validation")
            return f"runs:/{info.run_id}/validation/{report.id}.json"
        return local.resolve().as_uri()
