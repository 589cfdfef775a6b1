"""Export a deployment's model as a standalone Bento (``bentoml build`` + ``bentoml export``)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelplane.kit.auth import current_principal
from modelplane.kit.errors import AlreadyExists
from modelplane.kit.locations import Location, StoragePolicy
from modelplane.serving.data_plane import DataPlane
from modelplane.serving.deployment import ModelTarget

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


@dataclass(frozen=True)
class ExportedBento:
    bento_tag: str
    path: str
    bento_model_tag: str


class BentoExporter:
    def __init__(self, plane: DataPlane, output_dir: Path, storage: StoragePolicy) -> None:
        self.plane = plane
        #: where an export without an output_path goes (server-named)
        self.output_dir = output_dir
        #: what callers may name as output_path (kit locations)
        self.storage = storage

    def _build(self, model: str, version: str, tag: str, output: Location | None) -> ExportedBento:
        import bentoml

        name = tag.split(":", 1)[0]
        cls = "".join(p.capitalize() for p in name.replace(".", "-").replace("_", "-")
                      .split("-")) or "Model"
        with tempfile.TemporaryDirectory() as ctx:
            (Path(ctx) / "service.py").write_text(
                _SERVICE.format(model=model, version=version, tag=tag, cls=cls))
            bento = bentoml.bentos.build(
                f"service:{cls}", name=f"{name}-svc", build_ctx=ctx,
                labels={"registered_model": model, "version": version},
                python={"packages": ["scikit-learn", "numpy"], "lock_packages": False})
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
        rt = self.plane.runtime(name)
        self.plane.check_infer(rt, current_principal(), target)
        output = self.storage.writable(output_path, "output_path") if output_path else None
        t = target.resolved_in(rt.deployment.model) if target else rt.routes[0].target
        resolved = await self.plane.source.resolve(t)
        tag = await asyncio.to_thread(self.plane.repository.import_model, resolved)
        return await asyncio.to_thread(self._build, resolved.model, resolved.version, tag,
                                       output)
