"""Export a deployment's model as a standalone Bento (``bentoml build`` + ``bentoml export``).

The Bento's Python packages are the model's own: the pip requirements MLflow
recorded when the model was logged (``requirements.txt`` in the MLflow model
directory, or the pip section of its ``conda.yaml`` when there is none; read
with ``mlflow.pyfunc.get_model_dependencies``), plus what the generated
service itself imports (``numpy``; ``mlflow`` for a model served through
``bentoml.mlflow``; ``scikit-learn`` for one served through
``bentoml.sklearn``) when the model's list does not name them. So a pyfunc
model's Bento carries ``mlflow``, ``cloudpickle`` and whatever the data scientist
logged with the model, at the versions MLflow pinned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.auth import current_principal
from modelplane.kit.errors import AlreadyExists
from modelplane.kit.locations import Location, StoragePolicy
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.deployment_access import check_infer
from modelplane.serving.loaded_models import LoadedModels

log = logging.getLogger(__name__)

_SERVICE = '''"""Standalone BentoML service for {model} v{version}, exported by modelplane."""
import bentoml
import numpy as np

MODEL_TAG = "{tag}"


@bentoml.service
class {cls}:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        module = self.model_ref.info.module
        if module.endswith("sklearn"):
            self.model = bentoml.sklearn.load_model(self.model_ref)
        else:
            self.model = bentoml.mlflow.load_model(self.model_ref)

    @bentoml.api
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(inputs))
'''


def model_requirements(source_uri: str) -> list[str]:
    """The pip requirements MLflow recorded with the model at ``source_uri`` ([] if none)."""
    import mlflow.pyfunc

    try:
        path = mlflow.pyfunc.get_model_dependencies(source_uri, format="pip")
    except Exception as exc:  # noqa: BLE001 - an old model may have recorded none
        log.warning("no recorded requirements for %s: %s", source_uri, exc)
        return []
    return parse_requirements(Path(path).read_text())


def parse_requirements(text: str) -> list[str]:
    """Requirement lines of a pip requirements file: comments, blanks and options
    (``-r``, ``-c``, ``--index-url``...) left out, since a Bento names packages only."""
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            out.append(line)
    return out


def _project(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def bento_packages(requirements: list[str], *, served_by_sklearn: bool) -> list[str]:
    """The model's requirements plus what the generated service imports, when absent."""
    names = {_project(r) for r in requirements}
    needed = ["numpy", "scikit-learn" if served_by_sklearn else "mlflow"]
    return [*requirements, *(n for n in needed if n not in names)]


@dataclass(frozen=True)
class ExportedBento:
    bento_tag: str
    path: str
    bento_model_tag: str


class BentoExporter:
    def __init__(self, models: LoadedModels, output_dir: Path, storage: StoragePolicy) -> None:
        self.models = models
        #: where an export without an output_path goes (server-named)
        self.output_dir = output_dir
        #: what callers may name as output_path (kit locations)
        self.storage = storage

    def _build(self, model: str, version: str, tag: str, source_uri: str,
               output: Location | None) -> ExportedBento:
        import bentoml

        module = bentoml.models.get(tag).info.module
        packages = bento_packages(model_requirements(source_uri),
                                  served_by_sklearn=module.endswith("sklearn"))
        name = tag.split(":", 1)[0]
        cls = "".join(p.capitalize() for p in name.replace(".", "-").replace("_", "-")
                      .split("-")) or "Model"
        # BentoML imports the service module into this process to build it, and Python
        # caches modules by name: a second export under the same module name would get
        # the first one's class. So each build has a module name of its own.
        module_name = f"service_{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory() as ctx:
            (Path(ctx) / f"{module_name}.py").write_text(
                _SERVICE.format(model=model, version=version, tag=tag, cls=cls))
            try:
                bento = bentoml.bentos.build(
                    f"{module_name}:{cls}", name=f"{name}-svc", build_ctx=ctx,
                    labels={"registered_model": model, "version": version},
                    python={"packages": packages, "lock_packages": False})
            finally:
                sys.modules.pop(module_name, None)
        if output is None:
            out = self.output_dir / f"{name}-v{version}.bento"
            out.parent.mkdir(parents=True, exist_ok=True)
            return ExportedBento(str(bento.tag), bentoml.bentos.export_bento(bento.tag, str(out)),
                                 tag)
        if output.path is None:  # an allowed bucket: BentoML writes through fsspec
            bentoml.bentos.export_bento(bento.tag, output.target)
            return ExportedBento(str(bento.tag), output.uri, tag)
        # Into a new file of our own, then linked to the caller's name (never replacing
        # a file, nor following a symlink put there since the check).
        tmp = output.path.with_name(f".{output.path.name}.{uuid.uuid4().hex}.bento")
        try:
            bentoml.bentos.export_bento(bento.tag, str(tmp))
            try:
                os.link(tmp, output.path)
            except FileExistsError:
                raise AlreadyExists(f"output_path: {output.uri!r} was created during the "
                                    "export; it was left as it is",
                                    reason="LOCATION_EXISTS") from None
        finally:
            tmp.unlink(missing_ok=True)
        return ExportedBento(str(bento.tag), output.uri, tag)

    async def export(self, name: str, target: ModelTarget | None,
                     output_path: str) -> ExportedBento:
        rt = self.models.runtime(name)
        check_infer(rt, current_principal(), target)
        output = self.storage.writable(output_path, "output_path") if output_path else None
        t = target.resolved_in(rt.deployment.model) if target else rt.routes[0].target
        resolved = await self.models.source.resolve(t)
        tag = await asyncio.to_thread(self.models.repository.import_model, resolved)
        return await asyncio.to_thread(self._build, resolved.model, resolved.version, tag,
                                       resolved.source_uri, output)
