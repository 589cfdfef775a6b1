"""Mergeable profiles of the evaluation store: one per model, version, environment
and hour, kept at ingest, so an analysis over a large window merges a few
hundred small profiles instead of reading millions of rows.

What one bucket's profile holds, per column (feature, tag, score, prediction):

* **count** of records with a value; the missing count is the bucket's record
  count minus it (a record has a value or not), so it is not stored twice.
* numbers: a **KLL quantile sketch** (Apache DataSketches ``kll_doubles_sketch``,
  k = :data:`KLL_K`) and the exact count, mean and sum of squared deviations
  (merged with Chan's formula), for the standard deviation.
* categories (strings, booleans, class labels): **exact counts per value**, at
  most :data:`MAX_CATEGORIES` distinct values a bucket; past that the rarest
  values of the bucket are summed into one ``other`` count (exact for columns of
  at most that many values a bucket, which is what slices and drift are about;
  not a frequent-items sketch).

Profiles merge associatively and commutatively: a window's profile is the merge
of its buckets, and a batch split in two gives the same profile as the batch
(sketches: the same distribution of error, not the same bytes).

The stores keep one row per bucket (``obs_profiles``: model, version,
environment, bucket start, record count, profile bytes) and merge a batch's
profile into it in the transaction that stores the batch's records, counting
only the records that were new (a re-sent record is not counted twice).

Drift from profiles (:func:`profile_numeric_drift`, :func:`profile_categorical_drift`),
with the bounds stated in the service README:

* **KS**: D = max |F_ref(x) - F_cur(x)| over the union of both sketches'
  quantiles at :data:`GRID` evenly spaced ranks. Each sketch's CDF is within
  ε (``normalized_rank_error``, 99 % confidence) of the true one, and the grid
  misses at most 1/GRID of rank between points: |D - D_exact| ≤ 2ε + 1/GRID.
  Its p-value is Kolmogorov's asymptotic ``kstwo.sf(D, n·m/(n+m))``.
* **Wasserstein**: ∫|Q_ref(u) - Q_cur(u)| du by the midpoint rule over GRID
  ranks of the sketches' quantile functions, normalized by the reference's
  exact standard deviation.
* **PSI / Jensen-Shannon**: the bins are the reference sketch's deciles (the
  exact path uses the sample's); each bin's share is within 2ε of the share of
  the same bin in the data.
* categories: exact counts, so PSI, Jensen-Shannon and chi-square are the exact
  path's numbers (while no bucket had more than MAX_CATEGORIES values).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from datasketches import kll_doubles_sketch
from scipy import stats

from modelplane.observability.drift import (
    DriftMethod,
    DriftStatistic,
    DriftThresholds,
    SampleDrift,
    count_drift,
    jensen_shannon,
    psi,
)
from modelplane.observability.records import ColumnSource

#: KLL accuracy parameter: normalized rank error ε ≈ 0.18 % (99 % confidence).
#: 400 (ε 0.68 %) let a heavy-tailed column's Wasserstein from profiles be off by
#: as much as the drift threshold (lognormal sigma 1.5, A/A: 0.094 against 0.1): the
#: top ranks decide it. 1600 cuts that error about four times, for at most ~36 KB
#: a column and hour (hours of fewer records keep their values) and ~0.06 s to
#: merge 672 hours. Sketches stored with a smaller k still merge (the result has
#: the smaller k, and ``rank_error`` reports its ε).
KLL_K = 1600
#: Distinct values of a categorical column counted exactly per bucket.
MAX_CATEGORIES = 512
#: Ranks at which merged sketches are compared (KS, Wasserstein).
GRID = 2000
HOUR_US = 3_600_000_000
#: Catalog source code of scores (as in the store's catalog).
SCORE_SOURCE = 5
OTHER = "\x00other"

#: (model, version, environment, bucket start µs)
ProfileKey = tuple[str, str, int, int]
ColumnKey = tuple[int, str]


def rank_error(*profiles: Profile) -> float:
    """ε of the sketches the answer used (single rank queries, 99 % confidence):
    the largest among ``profiles``' merged sketches, which is a sketch of k =
    KLL_K's unless a store kept older, smaller-k sketches; with no profiles (or
    no sketch in them), that of k = KLL_K."""
    worst = float(kll_doubles_sketch(KLL_K).normalized_rank_error(False))
    for prof in profiles:
        for col in prof.columns.values():
            if col.sketch is not None:
                worst = max(worst, float(col.sketch.normalized_rank_error(False)))
    return worst


@dataclass
class ColumnProfile:
    numbers: int = 0
    mean: float = 0.0
    m2: float = 0.0
    sketch: kll_doubles_sketch | None = None
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def labels(self) -> int:
        return sum(self.categories.values())

    def add_numbers(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        m = len(values)
        if not m:
            return
        mean = float(values.mean())
        m2 = float(np.dot(values - mean, values - mean))
        n = self.numbers + m
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.numbers * m / n
        self.mean += delta * m / n
        self.numbers = n
        if self.sketch is None:
            self.sketch = kll_doubles_sketch(KLL_K)
        self.sketch.update(values)

    def add_labels(self, values: np.ndarray) -> None:
        present = values[values != None]  # noqa: E711 - elementwise on object arrays
        if not len(present):
            return
        keys, counts = np.unique(present.astype(str), return_counts=True)
        self.merge(ColumnProfile(categories=dict(zip(keys.tolist(), counts.tolist()))))

    def merge(self, other: ColumnProfile) -> None:
        if other.numbers:
            n = self.numbers + other.numbers
            delta = other.mean - self.mean
            self.mean += delta * other.numbers / n
            self.m2 += other.m2 + delta * delta * self.numbers * other.numbers / n
            self.numbers = n
            if self.sketch is None:
                self.sketch = kll_doubles_sketch(KLL_K)
            assert other.sketch is not None
            self.sketch.merge(other.sketch)
        for key, count in other.categories.items():
            self.categories[key] = self.categories.get(key, 0) + count

    def cap(self, limit: int = MAX_CATEGORIES) -> None:
        """At most ``limit`` values and OTHER: the rarest go into OTHER."""
        if len(self.categories) <= limit + (OTHER in self.categories):
            return
        other = self.categories.pop(OTHER, 0)
        ranked = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))
        self.categories = dict(ranked[:limit])
        self.categories[OTHER] = other + sum(c for _, c in ranked[limit:])

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.numbers) if self.numbers else 0.0


@dataclass
class Profile:
    """One bucket's (or a merged window's) profile."""

    records: int = 0
    columns: dict[ColumnKey, ColumnProfile] = field(default_factory=dict)
    buckets: int = 0

    def column(self, key: ColumnKey) -> ColumnProfile:
        col = self.columns.get(key)
        if col is None:
            col = self.columns[key] = ColumnProfile()
        return col

    def merge(self, other: Profile) -> None:
        self.records += other.records
        self.buckets += other.buckets
        for key, col in other.columns.items():
            self.column(key).merge(col)

    def to_bytes(self) -> bytes:
        """A JSON header (counts, moments, categories) and the sketches' own bytes."""
        header, sketches = self.to_parts()
        return struct.pack("<I", len(header)) + header + sketches

    def to_parts(self) -> tuple[bytes, bytes]:
        """The JSON header of :meth:`to_bytes` (the stores keep it apart too: what
        counting needs, without the sketches) and the sketches' bytes."""
        sketches: list[bytes] = []
        cols = []
        for (src, name), col in sorted(self.columns.items()):
            col.cap()
            blob = col.sketch.serialize() if col.sketch is not None else b""
            sketches.append(blob)
            cols.append([src, name, col.numbers, col.mean, col.m2, len(blob), col.categories])
        header = json.dumps({"n": self.records, "c": cols}, separators=(",", ":")).encode()
        return header, b"".join(sketches)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        if not data:
            return cls()
        (size,) = struct.unpack_from("<I", data)
        header = json.loads(data[4:4 + size])
        out = cls(int(header["n"]), buckets=1)
        pos = 4 + size
        for src, name, numbers, mean, m2, length, cats in header["c"]:
            col = ColumnProfile(int(numbers), float(mean), float(m2), None, dict(cats))
            if length:
                col.sketch = kll_doubles_sketch.deserialize(bytes(data[pos:pos + length]))
                pos += length
            out.columns[(int(src), name)] = col
        return out


def merge_all(profiles: Iterable[Profile]) -> Profile:
    out = Profile()
    for p in profiles:
        out.merge(p)
    return out


# ---------------------------------------------------------------------------
# Building profiles from stored rows


def _objects(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    out = np.empty(len(col), dtype=object)
    out[:] = col.to_pylist()
    return out


def _json_struct(col: pa.ChunkedArray) -> pa.Table | None:
    """Parse a column of JSON objects (null = {}) into a table of its keys."""
    if len(col) == 0 or col.null_count == len(col):
        return None
    texts = pc.fill_null(col.cast(pa.string()), "{}").to_pylist()
    data = ("\n".join(texts) + "\n").encode()
    return pa_json.read_json(pa.BufferReader(data),
                             read_options=pa_json.ReadOptions(block_size=max(len(data), 1 << 20)))


def _add_struct(profiles: list[Profile], groups: list[np.ndarray], table: pa.Table | None,
                source: int, numeric_only: bool = False) -> None:
    if table is None:
        return
    for name in table.column_names:
        col = table.column(name)
        t = col.type
        if pa.types.is_null(t):
            continue
        key = (source, name)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            values = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            for profile, idx in zip(profiles, groups):
                profile.column(key).add_numbers(values[idx])
        elif not numeric_only:
            if pa.types.is_boolean(t):
                col = pc.if_else(col, "true", "false")
            values = _objects(col.cast(pa.string()))
            for profile, idx in zip(profiles, groups):
                profile.column(key).add_labels(values[idx])


def build_profiles(table: pa.Table) -> dict[ProfileKey, Profile]:
    """Profiles of stored rows (an Arrow table with the store's record columns:
    ``model``, ``version``, ``environment``, ``prediction_time``, ``features``,
    ``prediction_label``, ``prediction_number``, ``scores``, ``tags``; JSON
    columns as text), by (model, version, environment, hour)."""
    out: dict[ProfileKey, Profile] = {}
    if table.num_rows == 0:
        return out
    times = table.column("prediction_time").cast(pa.timestamp("us")).cast(pa.int64())
    bucket = (times.to_numpy(zero_copy_only=False) // HOUR_US) * HOUR_US
    models = _objects(table.column("model"))
    versions = _objects(table.column("version"))
    envs = table.column("environment").to_numpy(zero_copy_only=False).astype(np.int64)
    import pandas as pd

    frame = pd.DataFrame({"m": models, "v": versions, "e": envs, "b": bucket})
    for model in sorted(set(models.tolist())):
        rows = np.flatnonzero(models == model)
        sub = table.take(pa.array(rows))
        by = frame.iloc[rows].groupby(["v", "e", "b"], sort=True).indices
        keys = [(model, str(v), int(e), int(b)) for v, e, b in by]
        groups = [np.asarray(i) for i in by.values()]
        profiles = [Profile(len(i), buckets=1) for i in groups]
        _add_struct(profiles, groups, _json_struct(sub.column("features")),
                    int(ColumnSource.FEATURE))
        _add_struct(profiles, groups, _json_struct(sub.column("scores")), SCORE_SOURCE,
                    numeric_only=True)
        tags = _json_struct(sub.column("tags"))
        if tags is not None:  # tags are strings; a parsed number is a string tag too
            tags = pa.table({n: tags.column(n).cast(pa.string()) if not pa.types.is_null(
                tags.column(n).type) else tags.column(n) for n in tags.column_names})
        _add_struct(profiles, groups, tags, int(ColumnSource.TAG))
        pred_key = (int(ColumnSource.PREDICTION), "")
        numbers = sub.column("prediction_number").to_numpy(zero_copy_only=False).astype(
            np.float64)
        labels = _objects(sub.column("prediction_label"))
        for profile, idx in zip(profiles, groups):
            col = profile.column(pred_key)
            col.add_numbers(numbers[idx])
            col.add_labels(labels[idx])
        out.update(zip(keys, profiles))
    return out


# ---------------------------------------------------------------------------
# Drift from profiles


def _grid() -> np.ndarray:
    return (np.arange(GRID) + 0.5) / GRID


def profile_numeric_drift(ref: ColumnProfile, cur: ColumnProfile, methods: Iterable[DriftMethod],
                          thresholds: DriftThresholds, bins: int, decide_by_ks: bool
                          ) -> SampleDrift:
    n1, n2 = ref.numbers, cur.numbers
    result = SampleDrift(n1, n2, decision_method=(
        DriftMethod.KS if decide_by_ks else DriftMethod.WASSERSTEIN))
    if not n1 or not n2 or ref.sketch is None or cur.sketch is None:
        return result
    methods = list(methods)
    u = _grid()
    q_ref = np.asarray(ref.sketch.get_quantiles(u.tolist()), dtype=np.float64)
    q_cur = np.asarray(cur.sketch.get_quantiles(u.tolist()), dtype=np.float64)
    if DriftMethod.KS in methods:
        points = np.unique(np.concatenate([q_ref, q_cur, [ref.sketch.get_min_value(),
                                                          cur.sketch.get_min_value()]]))
        f_ref = np.asarray(ref.sketch.get_cdf(points.tolist(), True)[:-1])
        f_cur = np.asarray(cur.sketch.get_cdf(points.tolist(), True)[:-1])
        d = float(np.clip(np.max(np.abs(f_ref - f_cur)), 0.0, 1.0))
        en = round(n1 * n2 / (n1 + n2))
        p = float(np.clip(stats.kstwo.sf(d, max(en, 1)), 0.0, 1.0))
        result.statistics.append(DriftStatistic(DriftMethod.KS, d, p, thresholds.p_value))
    if DriftMethod.WASSERSTEIN in methods:
        w = float(np.mean(np.abs(q_ref - q_cur)))
        std = ref.std
        normed = w / std if std > 0 else (0.0 if w == 0 else math.inf)
        result.statistics.append(DriftStatistic(DriftMethod.WASSERSTEIN, normed, None,
                                                thresholds.wasserstein, raw=w))
    if DriftMethod.PSI in methods or DriftMethod.JENSEN_SHANNON in methods:
        edges = np.unique(np.asarray(ref.sketch.get_quantiles(
            np.linspace(0, 1, bins + 1)[1:-1].tolist()), dtype=np.float64))

        def shares(sk: kll_doubles_sketch) -> np.ndarray:
            if not len(edges):
                return np.ones(1)
            cdf = np.asarray(sk.get_cdf(edges.tolist(), True), dtype=np.float64)
            return np.clip(np.diff(np.concatenate([[0.0], cdf])), 0.0, 1.0)

        r_share, c_share = shares(ref.sketch), shares(cur.sketch)
        if DriftMethod.PSI in methods:
            result.statistics.append(DriftStatistic(DriftMethod.PSI, psi(r_share, c_share),
                                                    None, thresholds.psi))
        if DriftMethod.JENSEN_SHANNON in methods:
            result.statistics.append(DriftStatistic(
                DriftMethod.JENSEN_SHANNON, jensen_shannon(r_share, c_share), None,
                thresholds.jensen_shannon))
    if result.decision_method not in {s.method for s in result.statistics} and result.statistics:
        result.decision_method = result.statistics[0].method
    return result


def profile_categorical_drift(ref: ColumnProfile, cur: ColumnProfile,
                              methods: Iterable[DriftMethod], thresholds: DriftThresholds,
                              decide_by_chi_square: bool) -> SampleDrift:
    cats = sorted(set(ref.categories) | set(cur.categories))
    r = np.array([ref.categories.get(c, 0) for c in cats], dtype=float)
    c = np.array([cur.categories.get(k, 0) for k in cats], dtype=float)
    return count_drift(r, c, methods, thresholds, decide_by_chi_square)


def merge_rows(rows: Iterable[tuple[Any, bytes]]) -> Profile:
    """The merge of stored profile rows (anything, profile bytes)."""
    return merge_all(Profile.from_bytes(bytes(blob)) for _, blob in rows)


#: A profile's counts without its sketches: (record count, category counts per column)
HeaderCounts = tuple[int, dict[ColumnKey, dict[str, int]]]


def header_text(data: bytes) -> str:
    """The JSON header of stored profile bytes ("" for none)."""
    if not data:
        return ""
    (size,) = struct.unpack_from("<I", data)
    return bytes(data[4:4 + size]).decode()


def header_counts(text: str | bytes) -> HeaderCounts:
    """The record count and category counts of a profile's JSON header."""
    if not text:
        return 0, {}
    header = json.loads(text)
    return int(header["n"]), {(int(c[0]), c[1]): dict(c[6]) for c in header["c"] if c[6]}


def profile_header(data: bytes) -> HeaderCounts:
    """A stored profile's record count and category counts, without its sketches."""
    return header_counts(header_text(data))


def stored_headers(rows: Iterable[tuple[int, int, str | None]]
                   ) -> list[tuple[int, int, dict[ColumnKey, dict[str, int]]]] | None:
    """(bucket, records, category counts) of stored (bucket, record count, header)
    rows; None when a header is missing or counts other records than its row (a
    profile written by a version that kept no header apart): read the profiles."""
    out = []
    for bucket, records, text in rows:
        if text is None:
            return None
        n, cats = header_counts(text)
        if n != records:
            return None
        out.append((int(bucket), n, cats))
    return out
