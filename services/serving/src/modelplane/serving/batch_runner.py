"""Batch jobs: score a parquet file or a featurestore dataset, write results, log them
(``batch``)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelplane.kit import paging
from modelplane.kit.auth import current_principal
from modelplane.kit.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    ModelplaneError,
    NotFound,
)
from modelplane.kit.locations import Location, StoragePolicy, read_parquet
from modelplane.serving.batch_job import BatchJob, BatchJobState
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.deployment_access import check_infer
from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.loaded_models import LoadedModels
from modelplane.serving.prediction_log import PredictionLogger, PredictionRecord
from modelplane.serving.servable_model import ModelInput, ServableModel

log = logging.getLogger("modelplane.serving.batch_runner")

#: Reads a featurestore dataset as pandas chunks (given its id).
DatasetReader = Callable[[str], AsyncIterator[Any]]
CHUNK_ROWS = 10_000


def _write_new(frame: Any, loc: Location) -> None:
    """Write the scored rows to ``loc`` without ever replacing a file: a temporary file
    in the same directory, hard-linked to the final name (which fails if the name was
    taken meanwhile), so neither a file nor a symlink put there later is written through."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if loc.path is None:
        pq.write_table(table, loc.target)  # an allowed bucket
        return
    tmp = loc.path.with_name(f".{loc.path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp)
        try:
            os.link(tmp, loc.path)
        except FileExistsError:
            raise AlreadyExists(f"batch_job.output_uri: {loc.uri!r} was created while the job "
                                "ran; it was left as it is", reason="LOCATION_EXISTS") from None
    finally:
        tmp.unlink(missing_ok=True)


class BatchRunner:
    def __init__(self, store: DeploymentStore, models: LoadedModels, logger: PredictionLogger,
                 output_dir: Path, storage: StoragePolicy,
                 dataset_reader: DatasetReader | None = None) -> None:
        self.store = store
        self.models = models
        self.logger = logger
        #: where a job without an output_uri writes (server-named)
        self.output_dir = output_dir
        #: what callers may name as input and output (kit locations)
        self.storage = storage
        self.dataset_reader = dataset_reader
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(self, *, deployment: str, target: ModelTarget | None, dataset: str,
                     parquet_uri: str, output_uri: str, logging_enabled: bool) -> BatchJob:
        if bool(dataset) == bool(parquet_uri):
            raise InvalidArgument("set exactly one of batch_job.dataset or batch_job.parquet_uri",
                                  reason="BATCH_INPUT_INVALID",
                                  field_violations=[FieldViolation("batch_job.input",
                                                                   "exactly one")])
        rt = self.models.runtime(deployment)
        check_infer(rt, current_principal(), target)
        if parquet_uri:
            self.storage.readable(parquet_uri, "batch_job.parquet_uri")
        if output_uri:
            self.storage.writable(output_uri, "batch_job.output_uri")
        if dataset and self.dataset_reader is None:
            raise InvalidArgument("no featurestore is configured to read datasets from",
                                  reason="FEATURESTORE_NOT_CONFIGURED")
        job_id = uuid.uuid4().hex
        out = output_uri or str(self.output_dir / f"{job_id}.parquet")
        job = BatchJob(id=job_id, deployment=deployment,
                       target=target.resolved_in(rt.deployment.model) if target else None,
                       dataset=dataset, parquet_uri=parquet_uri, output_uri=out,
                       logging_enabled=logging_enabled)
        await asyncio.to_thread(self.store.save_job, job)
        task = asyncio.create_task(self._run(job), name=f"batch-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def get(self, job_id: str) -> BatchJob:
        job = await asyncio.to_thread(self.store.get_job, job_id)
        if job is None:
            raise NotFound(f"batch job {job_id!r} not found", reason="BATCH_JOB_NOT_FOUND",
                           metadata={"batch_job": job_id})
        return job

    async def list_jobs(self, page_size: int, page_token: str, deployment: str
                   ) -> tuple[list[BatchJob], str]:
        limit = paging.page_size(page_size)
        query = {"kind": "batch_jobs", "deployment": deployment}
        offset = paging.decode_offset(page_token, query)
        jobs = await asyncio.to_thread(self.store.list_jobs, offset=offset, limit=limit + 1,
                                       deployment=deployment)
        more = len(jobs) > limit
        return jobs[:limit], paging.encode_page_token(offset + limit if more else None, query)

    async def _model(self, job: BatchJob) -> ServableModel:
        rt = self.models.runtime(job.deployment)
        target = job.target or rt.routes[0].target
        model = rt.models.get(target.key)
        if model is None:
            resolved = await self.models.source.resolve(target)
            model = await asyncio.to_thread(self.models.repository.load, resolved)
        return model

    async def _chunks(self, job: BatchJob) -> AsyncIterator[Any]:
        if job.parquet_uri:
            field = "batch_job.parquet_uri"
            table = await asyncio.to_thread(read_parquet,
                                            self.storage.readable(job.parquet_uri, field), field)
            for batch in table.to_batches(CHUNK_ROWS):
                yield batch.to_pandas()
        else:
            assert self.dataset_reader is not None
            async for chunk in self.dataset_reader(job.dataset):
                yield chunk

    async def _run(self, job: BatchJob) -> None:
        import pandas as pd

        job.state, job.start_time = BatchJobState.RUNNING, datetime.now(UTC)
        await asyncio.to_thread(self.store.save_job, job)
        try:
            model = await self._model(job)
            job.model, job.model_version = model.model, model.version
            binding = self.models.runtime(job.deployment).deployment.features
            # A matrix model takes the deployment's feature columns, in binding order
            # (a dataset also holds entity keys, timestamps and labels).
            feature_columns = (binding.column_names() if binding is not None
                               and not model.signature.columns else None)
            parts = []
            async for df in self._chunks(job):
                job.rows_total += len(df)
                use = feature_columns or list(df.columns)
                missing = [c for c in use if c not in df.columns]
                if missing:
                    raise InvalidArgument(f"the input has no column(s) {', '.join(missing)}",
                                          reason="BATCH_COLUMNS_MISSING")
                data = ModelInput(len(df), {c: df[c].to_numpy() for c in use})
                started = time.perf_counter()
                out = await asyncio.to_thread(model.predict_blocking, data)
                elapsed = (time.perf_counter() - started) * 1000.0
                pid = uuid.uuid4().hex
                result = df.copy()
                if out.ndim == 1:
                    result["prediction"] = out
                else:
                    for k in range(out.shape[1]):
                        result[f"prediction_{k}"] = out[:, k]
                result["prediction_id"] = [f"{pid}.{i}" for i in range(len(df))]
                result["model_version"] = model.version
                parts.append(result)
                if job.logging_enabled:
                    await self.logger.log(PredictionRecord(
                        pid, job.deployment, model.model, model.version, "batch", time.time(),
                        data, out, elapsed / max(len(df), 1), {}, f"batch:{job.id}"))
                job.rows_scored += len(df)
                await asyncio.to_thread(self.store.save_job, job)
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            if job.output_uri == str(self.output_dir / f"{job.id}.parquet"):
                self.output_dir.mkdir(parents=True, exist_ok=True)
                loc = Location(job.output_uri, Path(job.output_uri))
            else:  # caller-named: checked again, the roots may have changed since
                loc = self.storage.writable(job.output_uri, "batch_job.output_uri")
            await asyncio.to_thread(_write_new, frame, loc)
            job.state = BatchJobState.SUCCEEDED
        except ModelplaneError as exc:
            job.state, job.error_message = BatchJobState.FAILED, exc.message
        except Exception as exc:
            log.exception("batch job %s failed", job.id)
            job.state, job.error_message = BatchJobState.FAILED, f"{type(exc).__name__}: {exc}"
        job.end_time = datetime.now(UTC)
        await asyncio.to_thread(self.store.save_job, job)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=30)


