"""A loaded model version ready to answer: its input signature, its predict and its workers.

Inputs arrive as a :class:`ModelInput` (named 1-D columns or one 2-D matrix);
:meth:`ServableModel.prepare` checks them against the model's signature
(INVALID_ARGUMENT naming the tensor on a shape or datatype mismatch) and builds
what the framework wants. ``predict`` runs on the model's own daemon worker
threads, so a model that hangs only ties up its own workers and a timeout
can still answer from the fallback chain.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from modelplane.kit.errors import FieldViolation, InvalidArgument


class ModelOutputError(Exception):
    """A model answered with something that is not a prediction per row."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # "float", "int", "bool", "string"


@dataclass(frozen=True)
class InputSignature:
    """Columns by name (tabular models) or a feature count (matrix models)."""

    columns: tuple[ColumnSpec, ...] = ()
    n_features: int | None = None

    @property
    def width(self) -> int | None:
        return len(self.columns) if self.columns else self.n_features

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [[c.name, c.kind] for c in self.columns],
                "n_features": self.n_features or 0}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSignature:
        return cls(tuple(ColumnSpec(n, k) for n, k in d.get("columns", [])),
                   d.get("n_features") or None)


@dataclass
class ModelInput:
    """Rows to score: named columns (each shape [N]) and/or one matrix [N, F]."""

    n_rows: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    matrix: np.ndarray | None = None
    matrix_name: str = ""
    #: columns that only key a feature lookup (entity keys): not stacked into matrix models
    key_columns: frozenset[str] = frozenset()

    def with_column(self, name: str, values: np.ndarray) -> ModelInput:
        values = np.asarray(values)
        if self.matrix is not None and not self.columns:
            col = values.reshape(self.n_rows, -1).astype(self.matrix.dtype, copy=False)
            return ModelInput(self.n_rows, {}, np.hstack([self.matrix, col]), self.matrix_name,
                              self.key_columns)
        cols = dict(self.columns)
        cols[name] = values.reshape(self.n_rows) if values.ndim > 1 and values.shape[1] == 1 \
            else values
        return ModelInput(self.n_rows, cols, self.matrix, self.matrix_name, self.key_columns)

    def as_records(self) -> dict[str, list[Any]]:
        """The inputs as plain lists by name (for the prediction log)."""
        out: dict[str, list[Any]] = {k: v.tolist() for k, v in self.columns.items()}
        if self.matrix is not None:
            out[self.matrix_name or "input"] = self.matrix.tolist()
        return out


_KIND_OK = {
    "float": "fiub", "int": "iub", "bool": "b", "string": "USO",
}


class PredictionWorkers:
    """Daemon threads that run one model's predictions, with adaptive batching.

    A worker takes the oldest queued request and every other one already waiting
    (up to ``max_batch``) whose input stacks with it (same width and dtype, or the
    same DataFrame columns), calls ``predict`` once on the stacked rows and splits
    the answer back: under load, many requests cost one call and one thread
    hand-off; an idle server never waits to fill a batch. A batch that fails, or
    whose answer does not split by rows, is retried one request at a time so one
    bad request never fails its neighbours. Threads are daemons: a model that hangs
    ties up its own workers only and never blocks the process from exiting.
    """

    def __init__(self, name: str, size: int, *, max_batch: int = 64) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.max_batch = max_batch
        self.batches = 0
        self.batched_requests = 0
        self._threads = [threading.Thread(target=self._run, name=f"predict-{name}-{i}",
                                          daemon=True) for i in range(size)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _deliver(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
        for fut, result, error in results:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

    @staticmethod
    def _stack_key(arg: Any) -> Any:
        if isinstance(arg, np.ndarray):
            return ("nd", arg.shape[1:], arg.dtype.str) if arg.ndim == 2 else None
        columns = getattr(arg, "columns", None)
        if columns is not None and hasattr(arg, "dtypes"):
            return ("df", tuple(columns), tuple(str(d) for d in arg.dtypes))
        return None

    def _call_one(self, fn: Callable[[Any], Any], arg: Any) -> tuple[Any, BaseException | None]:
        try:
            return fn(arg), None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            return None, exc

    def _call_batch(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Any] | None:
        """One predict over the stacked rows, split back; None when that does not work."""
        try:
            if isinstance(args[0], np.ndarray):
                stacked: Any = np.concatenate(args)
            else:
                import pandas as pd

                stacked = pd.concat(args, ignore_index=True)
            raw = fn(stacked)
            out = raw.to_numpy() if hasattr(raw, "to_numpy") else np.asarray(raw)
            if out.ndim == 0 or out.shape[0] != len(stacked):
                return None
        except Exception:  # noqa: BLE001 - retried one by one
            return None
        bounds = np.cumsum([len(a) for a in args])[:-1]
        return np.split(out, bounds)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            key = self._stack_key(item[3])
            while key is not None and len(items) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                if nxt[2] is not item[2] or self._stack_key(nxt[3]) != key:
                    self._serve([nxt])
                    continue
                items.append(nxt)
            if not self._serve(items):
                return

    def _serve(self, items: list[Any]) -> bool:
        items = [it for it in items if not it[1].done()]  # timed out while queued
        if not items:
            return True
        loop, fn = items[0][0], items[0][2]
        outputs = self._call_batch(fn, [it[3] for it in items]) if len(items) > 1 else None
        results: list[tuple[Any, Any, BaseException | None]] = []
        if outputs is not None:
            self.batches += 1
            self.batched_requests += len(items)
            results = [(it[1], out, None) for it, out in zip(items, outputs, strict=True)]
        else:
            for it in items:
                result, error = self._call_one(it[2], it[3])
                results.append((it[1], result, error))
        try:
            loop.call_soon_threadsafe(self._deliver, results)
        except RuntimeError:  # loop closed
            return False
        return True

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put((loop, fut, fn, arg))
        return fut

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


@dataclass
class ServableModel:
    """One registered model version loaded from BentoML's model store."""

    model: str
    version: str
    source_uri: str
    bento_model_tag: str
    signature: InputSignature
    predict_fn: Callable[[Any], Any]
    wants_dataframe: bool
    load_time: datetime
    workers: PredictionWorkers
    output_kind: str = "float"  # "float", "int" or "string": how outputs are typed

    # --- inputs -------------------------------------------------------------------------
    def prepare(self, data: ModelInput) -> Any:
        """Check ``data`` against the signature; return the framework input."""
        sig = self.signature
        if data.matrix is not None and not data.columns:
            m = data.matrix
            if m.ndim != 2:
                raise _shape_error(data.matrix_name, f"expected a 2-D tensor [N, {sig.width}], "
                                   f"got shape {list(m.shape)}")
            if sig.width is not None and m.shape[1] != sig.width:
                raise _shape_error(data.matrix_name,
                                   f"expected shape [N, {sig.width}] for model "
                                   f"{self.model} v{self.version}, got {list(m.shape)}")
            if m.dtype.kind not in "fiub":
                raise _dtype_error(data.matrix_name, "a numeric datatype (FP32, FP64, INT*)",
                                   m.dtype)
            if self.wants_dataframe and sig.columns:
                import pandas as pd

                return pd.DataFrame(m, columns=[c.name for c in sig.columns])
            return m
        if not sig.columns:
            # A matrix model fed named columns: stack them in the order given.
            arrays = [np.asarray(v).reshape(data.n_rows, -1) for k, v in data.columns.items()
                      if k not in data.key_columns]
            if data.matrix is not None:
                arrays.insert(0, data.matrix)
            m = np.hstack(arrays) if arrays else np.empty((data.n_rows, 0))
            if sig.width is not None and m.shape[1] != sig.width:
                raise InvalidArgument(
                    f"model {self.model} v{self.version} takes {sig.width} features; the request "
                    f"gave {m.shape[1]} ({', '.join(data.columns)})",
                    reason="INPUT_SHAPE_MISMATCH", metadata={"model": self.model},
                    field_violations=[FieldViolation("inputs", f"expected {sig.width} features")])
            if m.dtype.kind not in "fiub":
                raise _dtype_error("inputs", "numeric datatypes", m.dtype)
            return m
        missing = [c.name for c in sig.columns if c.name not in data.columns]
        if missing:
            raise InvalidArgument(
                f"model {self.model} v{self.version} needs input(s) {', '.join(missing)}",
                reason="INPUT_MISSING", metadata={"model": self.model, "inputs": ",".join(missing)},
                field_violations=[FieldViolation(f"inputs[{m}]", "missing") for m in missing])
        cols: dict[str, np.ndarray] = {}
        for c in sig.columns:
            v = np.asarray(data.columns[c.name])
            if v.ndim == 2 and v.shape[1] == 1:
                v = v.reshape(-1)
            if v.ndim != 1 or v.shape[0] != data.n_rows:
                raise _shape_error(c.name, f"expected shape [{data.n_rows}] or "
                                   f"[{data.n_rows}, 1], got {list(v.shape)}")
            if v.dtype.kind not in _KIND_OK.get(c.kind, "fiubUSO"):
                raise _dtype_error(c.name, f"a {c.kind} datatype", v.dtype)
            cols[c.name] = v
        if self.wants_dataframe:
            import pandas as pd

            return pd.DataFrame(cols)
        return np.column_stack(list(cols.values()))

    # --- outputs ------------------------------------------------------------------------
    def check_output(self, raw: Any, n_rows: int) -> np.ndarray:
        """The prediction as an array with one row per input row, or ModelOutputError."""
        try:
            if hasattr(raw, "to_numpy"):
                raw = raw.to_numpy()
            out = np.asarray(raw)
        except Exception as exc:  # noqa: BLE001
            raise ModelOutputError(f"output is not an array: {exc}") from None
        if out.ndim == 0 or out.shape[0] != n_rows:
            raise ModelOutputError(f"expected {n_rows} output row(s), got shape {list(out.shape)}")
        if out.ndim > 2:
            raise ModelOutputError(f"output has {out.ndim} dimensions")
        if out.dtype.kind == "O":
            try:
                out = out.astype(np.float64)
            except (TypeError, ValueError):
                try:
                    out = out.astype(str)
                except Exception:  # noqa: BLE001
                    raise ModelOutputError("output holds objects that are neither numbers "
                                           "nor strings") from None
        if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
            raise ModelOutputError("output holds NaN or infinite values")
        if out.dtype.kind not in "fiubU":
            raise ModelOutputError(f"output datatype {out.dtype} is not a prediction")
        return out

    async def predict(self, data: ModelInput, timeout: float | None = None) -> np.ndarray:
        """Predict on the model's workers; TimeoutError after ``timeout`` seconds."""
        prepared = self.prepare(data)
        fut = self.workers.submit(self.predict_fn, prepared)
        handle = None
        if timeout is not None:
            handle = asyncio.get_running_loop().call_later(timeout, _expire, fut)
        try:
            raw = await fut
        finally:
            if handle is not None:
                handle.cancel()
        return self.check_output(raw, data.n_rows)

    def predict_blocking(self, data: ModelInput) -> np.ndarray:
        return self.check_output(self.predict_fn(self.prepare(data)), data.n_rows)

    def close(self) -> None:
        self.workers.close()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


def _shape_error(tensor: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"input tensor {tensor!r}: {description}",
                           reason="INPUT_SHAPE_MISMATCH", metadata={"tensor": tensor},
                           field_violations=[FieldViolation(f"inputs[{tensor}].shape",
                                                            description)])


def _dtype_error(tensor: str, expected: str, got: np.dtype[Any]) -> InvalidArgument:
    description = f"expected {expected}, got {got}"
    return InvalidArgument(f"input tensor {tensor!r}: {description}",
                           reason="INPUT_DATATYPE_MISMATCH", metadata={"tensor": tensor},
                           field_violations=[FieldViolation(f"inputs[{tensor}].datatype",
                                                            description)])
