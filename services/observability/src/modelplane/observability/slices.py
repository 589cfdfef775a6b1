"""Slices: typed predicates validated against a model's columns and evaluated
vectorised on a frame, and the candidate slices analyses break results down by.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.observability import metrics as M
from modelplane.observability.records import (
    OPERAND_COUNT,
    ORDERING_OPERATORS,
    ColumnKind,
    ColumnRef,
    ColumnSource,
    SliceOperator,
    SlicePredicate,
    label_of,
)
from modelplane.observability.store.frames import Frame

MAX_CATEGORIES = 20


def _bad(field: str, description: str, reason: str, metadata: dict[str, str] | None = None
         ) -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason, metadata=metadata or {},
                           field_violations=[FieldViolation(field, description)])


def check_column(ref: ColumnRef, kinds: dict[ColumnRef, ColumnKind], model: str, path: str
                 ) -> ColumnKind:
    """The column's kind, or INVALID_ARGUMENT naming the unknown column."""
    if ref.source in (ColumnSource.PREDICTION, ColumnSource.ACTUAL):
        if ref.name:
            raise _bad(f"{path}.name", "must be empty for the prediction and the actual",
                       "INVALID_COLUMN")
        label = kinds.get(ColumnRef(ColumnSource.PREDICTION), ColumnKind.CATEGORICAL)
        # a frame holds a classifier's prediction and actual as labels ("true",
        # "false" for a boolean model): they slice and compare as categories
        return ColumnKind.CATEGORICAL if label is ColumnKind.BOOLEAN else label
    if not ref.name:
        raise _bad(f"{path}.name", "required", "INVALID_COLUMN")
    kind = kinds.get(ref)
    if kind is None:
        what = "feature" if ref.source is ColumnSource.FEATURE else "tag"
        raise _bad(f"{path}.name", f"model {model!r} has no {what} {ref.name!r}",
                   "UNKNOWN_COLUMN", {"model": model, "column": ref.name, "source": what})
    return kind


def _typed_operand(value: object, kind: ColumnKind, path: str) -> object:
    if kind is ColumnKind.NUMERIC:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(path, f"column is numeric; got {type(value).__name__}",
                       "OPERAND_TYPE_MISMATCH")
        return float(value)
    if kind is ColumnKind.BOOLEAN:
        if not isinstance(value, bool):
            raise _bad(path, f"column is boolean; got {type(value).__name__}",
                       "OPERAND_TYPE_MISMATCH")
        return value
    if isinstance(value, str):
        return value
    label = label_of(value)  # type: ignore[arg-type]
    if label is None or isinstance(value, float):
        raise _bad(path, f"column is categorical; got {type(value).__name__}",
                   "OPERAND_TYPE_MISMATCH")
    return label


def validate_predicates(predicates: Sequence[SlicePredicate], kinds: dict[ColumnRef, ColumnKind],
                        model: str, path: str) -> list[SlicePredicate]:
    """Predicates with operands converted to the column's type; INVALID_ARGUMENT otherwise."""
    out = []
    for i, pred in enumerate(predicates):
        here = f"{path}[{i}]"
        kind = check_column(pred.column, kinds, model, f"{here}.column")
        if pred.op is SliceOperator.UNSPECIFIED:
            raise _bad(f"{here}.op", "required", "INVALID_OPERATOR")
        want = OPERAND_COUNT[pred.op]
        if want is None and not pred.values:
            raise _bad(f"{here}.values", f"{pred.op.name} needs at least one value",
                       "INVALID_OPERANDS")
        if want is not None and len(pred.values) != want:
            raise _bad(f"{here}.values", f"{pred.op.name} takes {want} value(s), got "
                       f"{len(pred.values)}", "INVALID_OPERANDS")
        if pred.op in ORDERING_OPERATORS and kind is not ColumnKind.NUMERIC:
            raise _bad(f"{here}.op", f"{pred.op.name} needs a numeric column; "
                       f"{pred.column} is {kind.name.lower()}", "INVALID_OPERATOR")
        values = tuple(_typed_operand(v, kind, f"{here}.values[{j}]")
                       for j, v in enumerate(pred.values))
        out.append(SlicePredicate(pred.column, pred.op, values))  # type: ignore[arg-type]
    return out


def _is_null(col: np.ndarray) -> np.ndarray:
    if col.dtype == np.float64:
        return np.isnan(col)
    return M.is_none(col)


def predicate_mask(frame: Frame, pred: SlicePredicate) -> np.ndarray:
    col = frame.column(pred.column)
    op = pred.op
    null = _is_null(col)
    if op is SliceOperator.IS_NULL:
        return null
    if op is SliceOperator.IS_NOT_NULL:
        return ~null
    v = pred.values
    numeric = col.dtype == np.float64
    with np.errstate(invalid="ignore"):
        if op is SliceOperator.EQUAL:
            m = col == v[0]
        elif op is SliceOperator.NOT_EQUAL:
            m = (col != v[0]) & ~null
        elif op is SliceOperator.LESS:
            m = col < v[0]
        elif op is SliceOperator.LESS_OR_EQUAL:
            m = col <= v[0]
        elif op is SliceOperator.GREATER:
            m = col > v[0]
        elif op is SliceOperator.GREATER_OR_EQUAL:
            m = col >= v[0]
        elif op is SliceOperator.BETWEEN:
            m = (col >= v[0]) & (col < v[1])
        elif op in (SliceOperator.IN, SliceOperator.NOT_IN):
            if numeric:
                m = np.isin(col, np.asarray(v, dtype=np.float64))
            else:
                wanted = set(v)
                m = np.fromiter((x in wanted for x in col), dtype=bool, count=len(col))
            if op is SliceOperator.NOT_IN:
                m = ~m & ~null
        else:
            raise AssertionError(op)
    return np.asarray(m, dtype=bool) & ~null


def slice_mask(frame: Frame, predicates: Sequence[SlicePredicate]) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for pred in predicates:
        mask &= predicate_mask(frame, pred)
    return mask


def candidate_slices(column: ColumnRef, kind: ColumnKind, frames: Sequence[Frame], bins: int
                     ) -> list[tuple[SlicePredicate, ...]]:
    """Slices of one column: each category (the most frequent ones) or quantile bins."""
    values = [f.column(column) for f in frames]
    if kind is ColumnKind.NUMERIC:
        allv = np.concatenate(values) if values else np.empty(0)
        allv = allv[~np.isnan(allv)]
        if len(allv) == 0:
            return []
        edges = np.unique(np.quantile(allv, np.linspace(0, 1, bins + 1))[1:-1])
        if len(edges) == 0:
            return [(SlicePredicate(column, SliceOperator.EQUAL, (float(allv[0]),)),)]
        out: list[tuple[SlicePredicate, ...]] = [
            (SlicePredicate(column, SliceOperator.LESS, (float(edges[0]),)),)]
        for lo, hi in itertools.pairwise(edges):
            out.append((SlicePredicate(column, SliceOperator.BETWEEN, (float(lo), float(hi))),))
        out.append((SlicePredicate(column, SliceOperator.GREATER_OR_EQUAL,
                                   (float(edges[-1]),)),))
        return out
    counts: dict[str | bool, int] = {}
    for arr in values:
        uniq, cnt = np.unique(arr[~_is_null(arr)].astype(str) if kind is not ColumnKind.BOOLEAN
                              else arr[~_is_null(arr)].astype(bool), return_counts=True)
        for u, c in zip(uniq.tolist(), cnt.tolist()):
            counts[u] = counts.get(u, 0) + int(c)
    top = sorted(counts, key=lambda k: -counts[k])[:MAX_CATEGORIES]
    return [(SlicePredicate(column, SliceOperator.EQUAL, (v,)),) for v in sorted(top, key=str)]
