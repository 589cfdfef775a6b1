"""How much one process computes at once, and how much one analysis may read.

Two numbers, both settings (``ObservabilitySettings``):

- **Concurrent analyses** (``MODELPLANE_OBSERVABILITY_MAX_CONCURRENT_ANALYSES``):
  the compute RPCs (performance, proxy performance, drift, root cause, feature
  importance, explanations, ListRecords with predicates) and the dashboard's
  model pages share one :class:`AnalysisGate` per process. A call that finds
  every slot taken waits at most ``MODELPLANE_OBSERVABILITY_ANALYSIS_WAIT_SECONDS``
  for one, then gets ``RESOURCE_EXHAUSTED`` (reason ``TOO_MANY_ANALYSES``) with
  a retry hint (``retry_after_seconds`` in ``ErrorInfo``).
- **Rows per analysis** (``MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS``): every
  read of the evaluation store an analysis makes is charged to one
  :class:`RowBudget`; the store is asked for at most one row more than what is
  left, so an analysis that would read more stops there with
  ``RESOURCE_EXHAUSTED`` (reason ``ANALYSIS_ROW_BUDGET_EXCEEDED``) naming the
  setting and the count, having read no more than the budget and one row.
  In automatic (or SAMPLE) mode the drift, performance, root cause and proxy
  performance reads are planned instead (:class:`Sampling`): a side with more
  records than its share of the budget is read as a uniform sample of that share.

The budget of the running analysis travels in a context variable (set in the
worker thread the analysis runs in), so :meth:`Evaluations.load` charges it
without every analysis passing it down; reads outside a gated call (monitors)
get a budget of their own per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any, TypeVar

from modelplane.kit.errors import ResourceExhausted

ROWS_SETTING = "MODELPLANE_OBSERVABILITY_MAX_ANALYSIS_ROWS"
EXACT_ROWS_SETTING = "MODELPLANE_OBSERVABILITY_EXACT_ROWS"
#: AUTO mode answers from the per-hour profiles past this many records a side (the
#: exact path reads the records: about 5 s for 200,000 a side on two loaded cores).
DEFAULT_EXACT_ROWS = 200_000
CONCURRENCY_SETTING = "MODELPLANE_OBSERVABILITY_MAX_CONCURRENT_ANALYSES"
DEFAULT_MAX_ANALYSIS_ROWS = 5_000_000
DEFAULT_MAX_CONCURRENT_ANALYSES = 4
DEFAULT_ANALYSIS_WAIT_SECONDS = 2.0
_POLL_SECONDS = 0.02

_T = TypeVar("_T")


class AnalysisMode(IntEnum):
    """How an analysis reads the store (numbers as in the contract's AnalysisMode).

    UNSPECIFIED (automatic): profiles when a side of the analysis holds more than
    ``MODELPLANE_OBSERVABILITY_EXACT_ROWS`` records and no predicate narrows it,
    else the records themselves (EXACT), or a uniform sample of them (SAMPLE) when
    the sides hold more than the row budget (``MAX_ANALYSIS_ROWS``)."""

    UNSPECIFIED = 0
    EXACT = 1
    PROFILE = 2
    SAMPLE = 3
class Sampling:
    """The sides one analysis reads, sampled past the row budget (automatic mode).

    The analysis declares how many sides it reads; each read (``Evaluations.load``)
    counts its records first and, when they are more than its share of what is
    left of the budget (what is left / the sides still to read), asks the store for
    a uniform sample of that share instead. So the sides together never read more
    than the budget."""

    def __init__(self, sides: int) -> None:
        self.sides = max(sides, 1)
        #: (records read, records in the side's window) per read, in order
        self.reads: list[tuple[int, int]] = []

    def share(self, budget: RowBudget) -> int:
        left = max(budget.limit - budget.read, 0)
        return left // max(self.sides - len(self.reads), 1)

    def add(self, read: int, population: int) -> None:
        self.reads.append((read, population))

    @property
    def sampled(self) -> bool:
        return any(r < p for r, p in self.reads)

    @property
    def sample_size(self) -> int:
        return sum(r for r, _ in self.reads)

    @property
    def population_size(self) -> int:
        return sum(p for _, p in self.reads)


_sampling: contextvars.ContextVar[Sampling | None] = contextvars.ContextVar(
    "modelplane_observability_sampling", default=None)


@contextlib.contextmanager
def sampling(mode: AnalysisMode, sides: int) -> Iterator[Sampling | None]:
    """Within: the reads of an analysis in ``mode`` (automatic or SAMPLE) sample past
    the budget; in EXACT (or PROFILE) mode nothing changes (None)."""
    if mode not in (AnalysisMode.UNSPECIFIED, AnalysisMode.SAMPLE):
        yield None
        return
    plan = Sampling(sides)
    token = _sampling.set(plan)
    try:
        yield plan
    finally:
        _sampling.reset(token)


def current_sampling() -> Sampling | None:
    return _sampling.get()


_budget: contextvars.ContextVar[RowBudget | None] = contextvars.ContextVar(
    "modelplane_observability_row_budget", default=None)


class RowBudget:
    """Rows one analysis has read so far, against its limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.read = 0

    @staticmethod
    def current(default_limit: int) -> RowBudget:
        """The running analysis's budget, else a fresh one for a single read."""
        return _budget.get() or RowBudget(default_limit)

    @property
    def scan_limit(self) -> int:
        """How many rows to ask the store for: what is left, and one more to notice."""
        return max(self.limit - self.read, 0) + 1

    def charge(self, rows: int) -> None:
        self.read += rows
        if self.read > self.limit:
            raise ResourceExhausted(
                f"this analysis would read more than {self.limit} records of the evaluation "
                f"store (at least {self.read}); the limit is {ROWS_SETTING}={self.limit}: "
                "narrow the filter (window, versions, environment) or raise the setting",
                reason="ANALYSIS_ROW_BUDGET_EXCEEDED",
                metadata={"setting": ROWS_SETTING, "limit": str(self.limit),
                          "rows_read": str(self.read)})


class AnalysisGate:
    """At most ``max_concurrent`` analyses at once in this process, each under a row budget."""

    def __init__(self, max_concurrent: int = DEFAULT_MAX_CONCURRENT_ANALYSES,
                 max_rows: int = DEFAULT_MAX_ANALYSIS_ROWS,
                 wait_seconds: float = DEFAULT_ANALYSIS_WAIT_SECONDS) -> None:
        self.max_concurrent = max_concurrent
        self.max_rows = max_rows
        self.wait_seconds = wait_seconds
        # A thread semaphore, released by the worker thread when the analysis really
        # ends: a caller that cancels does not free a slot its computation still holds.
        self._slots = threading.BoundedSemaphore(max_concurrent)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in a worker thread once a slot is free, under a fresh row budget."""
        await self._acquire()
        lock = threading.Lock()
        state = {"started": False, "abandoned": False}

        def work() -> _T | None:
            with lock:
                if state["abandoned"]:
                    return None
                state["started"] = True
            try:
                _budget.set(RowBudget(self.max_rows))
                return fn(*args)
            finally:
                self._slots.release()

        try:
            # copy_context: the worker's budget stays in the worker's copy
            ctx = contextvars.copy_context()
            result = await asyncio.get_running_loop().run_in_executor(None, ctx.run, work)
        except asyncio.CancelledError:
            with lock:
                if not state["started"]:
                    state["abandoned"] = True
                    self._slots.release()
            raise
        return result  # type: ignore[return-value]

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while not self._slots.acquire(blocking=False):
            if loop.time() >= deadline:
                retry = max(1, round(self.wait_seconds))
                raise ResourceExhausted(
                    f"{self.max_concurrent} analyses are already running in this process "
                    f"(the limit is {CONCURRENCY_SETTING}={self.max_concurrent}); "
                    f"retry in {retry} s",
                    reason="TOO_MANY_ANALYSES",
                    metadata={"setting": CONCURRENCY_SETTING,
                              "limit": str(self.max_concurrent),
                              "retry_after_seconds": str(retry)})
            await asyncio.sleep(_POLL_SECONDS)


__all__ = [
    "CONCURRENCY_SETTING",
    "DEFAULT_ANALYSIS_WAIT_SECONDS",
    "DEFAULT_EXACT_ROWS",
    "DEFAULT_MAX_ANALYSIS_ROWS",
    "DEFAULT_MAX_CONCURRENT_ANALYSES",
    "EXACT_ROWS_SETTING",
    "ROWS_SETTING",
    "AnalysisGate",
    "AnalysisMode",
    "RowBudget",
    "Sampling",
    "current_sampling",
    "sampling",
]
