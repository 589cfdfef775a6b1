"""Steps 8-9 and 11: a challenger moved onto the deployment by a serving ``Rollout``.

The demo only sends traffic and, a round later, the round's actuals (labels "arrive
later"); serving's rollout controller moves the weight step by step and promotes the
challenger through the registry's gate or rolls it back, by observability's numbers.
The demo never sets a traffic split or an alias for the decision.

Settings sized for the demo's traffic (rounds of ``ROUND`` requests, the controller
looking every second on the local platform): steps 10 % -> 30 % -> 50 % held until
``STEP_SAMPLES`` challenger predictions with an actual arrived in the step; the overall
accuracy check with a non-inferiority margin of 0.05 and a per-city check (margin 0.05,
10 labeled predictions per city and side), alpha 0.05, mixture scale 0.2 (the size of
difference the demo's challengers have: a broken city is ~0.5 worse, a better model
~0.05 better). ``uv run python bench/demo_rollout.py`` runs these settings through
``rollout.decide`` on the demo's accuracies per city: of 1000 simulated runs, the
challenger broken in one city is rolled back by its city before the 50 % step in
99.6 % (median 500 requests, p90 800), the better one promoted in 99.9 % (median
1400, p90 1600; the demo's stream of at most 4500 leaves it ~4000, at least 2250).
The live difference can be smaller than that: one run saw +0.003 after 2500 requests,
still short of evidence, so the stream's cap is 4500, not 3000; it ends once decided.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelplane.cli.demo.analysis import observed_records, send_actuals, wait_records
from modelplane.cli.demo.session import DEPLOYMENT, Demo, DemoFailed, call
from modelplane.cli.demo.traffic import Prediction, send_traffic

STEPS = (10.0, 30.0, 50.0)
#: challenger predictions with an actual each step needs (in that step) before the next
STEP_SAMPLES = (20, 250, 100)
STEP_SECONDS = 2
MARGIN = 0.05
SLICE_FEATURE = "city"
SLICE_MARGIN = 0.05
SLICE_MIN_LABELED = 10
ALPHA = 0.05
MIXTURE_SCALE = 0.2
#: requests per round: sent, logged, then their actuals, then a controller tick
ROUND = 100


def rollout_message(name: str, challenger: int) -> Any:
    from google.protobuf.duration_pb2 import Duration

    from modelplane.serving.v1 import serving_pb2 as sv

    return sv.Rollout(
        name=name, deployment=DEPLOYMENT,
        challenger=sv.ModelTarget(version=str(challenger)), champion_alias="champion",
        steps=[sv.RolloutStep(weight=w, min_duration=Duration(seconds=STEP_SECONDS),
                              min_samples=n) for w, n in zip(STEPS, STEP_SAMPLES, strict=True)],
        analysis=sv.RolloutAnalysis(
            checks=[sv.RolloutCheck(quality=sv.QualityCheck(
                        metric=sv.ROLLOUT_METRIC_ACCURACY, margin=MARGIN)),
                    sv.RolloutCheck(slice=sv.SliceCheck(
                        feature=SLICE_FEATURE, margin=SLICE_MARGIN,
                        min_labeled=SLICE_MIN_LABELED))],
            alpha=ALPHA, mixture_scale=MIXTURE_SCALE))


def state_name(state: int) -> str:
    from modelplane.serving.v1 import serving_pb2 as sv

    return sv.RolloutState.Name(state).removeprefix("ROLLOUT_STATE_")


TERMINAL = ("PROMOTED", "ROLLED_BACK", "FAILED", "ABORTED")


@dataclass
class RolloutRun:
    name: str
    challenger: int
    first_index: int
    next_index: int = 0
    predictions: list[Prediction] = field(default_factory=list)
    max_weight: float = 0.0
    rollout: Any = None
    actuals_accepted: int = 0
    actuals_unmatched: int = 0

    @property
    def state(self) -> str:
        return state_name(self.rollout.state) if self.rollout is not None else "UNSPECIFIED"


async def create(demo: Demo, name: str, challenger: int, override: str) -> Any:
    from modelplane.serving.v1 import serving_pb2 as sv

    serving = demo.stub("serving")
    if override:
        demo.console.print(f"[yellow]validation override[/] (audited; the registry still "
                           f"refuses to promote it): {override}")
    r = await call("CreateRollout", serving.CreateRollout(sv.CreateRolloutRequest(
        rollout=rollout_message(name, challenger), validation_override_reason=override)))
    steps = " -> ".join(f"{w:g}% (>= {n} labeled, >= {STEP_SECONDS}s)"
                        for w, n in zip(STEPS, STEP_SAMPLES, strict=True))
    demo.console.print(
        f"rollout [bold]{r.name}[/]: challenger v{r.challenger_version} against "
        f"@champion v{r.champion_version} on {DEPLOYMENT}; steps {steps}; accuracy "
        f"non-inferiority margin {MARGIN}, per-{SLICE_FEATURE} margin {SLICE_MARGIN} "
        f"(>= {SLICE_MIN_LABELED} labeled per {SLICE_FEATURE}), alpha {ALPHA}")
    return r


async def get(demo: Demo, name: str) -> Any:
    from modelplane.serving.v1 import serving_pb2 as sv

    return await call("GetRollout", demo.stub("serving").GetRollout(
        sv.GetRolloutRequest(name=name)))


async def drive(demo: Demo, run: RolloutRun, traffic: Any, *, records: int,
                until: Callable[[RolloutRun], bool], limit: int,
                on_round: Callable[[int], Any] | None = None) -> int:
    """Send ``traffic`` in rounds from ``run.next_index`` until ``until(run)`` or ``limit``
    rows: each round's requests, then (once observability logged them) their actuals,
    then a controller tick; prints the rollout after each round. ``records``:
    observability's record count before; returns it after."""
    i = run.next_index
    while i < limit and not until(run):
        if on_round is not None:
            await on_round(i)
        start, end = i, min(i + ROUND, limit)
        with demo.progress(transient=True) as progress:
            task = progress.add_task(f"requests {i}-{end - 1}", total=end - i)
            batch = await send_traffic(demo, traffic.rows, traffic.labels, range(i, end),
                                       progress, task)
            task = progress.add_task("logged by serving", total=len(batch))
            records = records + await wait_records(demo, records, len(batch), progress, task)
        # the labels arrive later: once the round's predictions are logged
        actuals = await send_actuals(demo, batch)
        sent = datetime.now(UTC)
        run.actuals_accepted += int(actuals.accepted_count)
        run.actuals_unmatched += int(actuals.unmatched_count)
        run.predictions += batch
        i = run.next_index = end
        run.rollout = await looked_after(demo, run.name, sent)
        r = run.rollout
        weight = (r.steps[r.current_step].weight
                  if state_name(r.state) in ("RUNNING", "PROMOTING") and r.steps else 0.0)
        run.max_weight = max(run.max_weight, r.steps[r.current_step].weight if r.steps else 0)
        to_challenger = sum(p.version == str(run.challenger) for p in batch)
        demo.console.print(f"  {end - run.first_index:>5} requests ({to_challenger:>2} of the "
                           f"last {end - start} to v{run.challenger}): step {r.current_step} "
                           f"({weight:g}%), {state_name(r.state)}: {r.state_message[:150]}")
    run.next_index = i
    return records


async def looked_after(demo: Demo, name: str, since: datetime, timeout: float = 10) -> Any:
    """The rollout once the controller has looked at it after ``since`` (its evidence's
    time is its last look; on a local platform it looks every second), or once it has
    left RUNNING (the controller records no look then); after ``timeout`` seconds without
    a look, the rollout as it stands (the next round's look will count these actuals)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await get(demo, name)
        if (state_name(r.state) != "RUNNING" or time.monotonic() > deadline
                or (r.HasField("evidence") and r.evidence.time.ToDatetime(UTC) > since)):
            return r
        await asyncio.sleep(0.1)


async def wait_terminal(demo: Demo, name: str, timeout: float = 60) -> Any:
    """The rollout once it is PROMOTED, ROLLED_BACK, FAILED or ABORTED."""
    deadline = time.monotonic() + timeout
    while True:
        r = await get(demo, name)
        if state_name(r.state) in TERMINAL:
            return r
        if time.monotonic() > deadline:
            raise DemoFailed(f"rollout {name} still {state_name(r.state)} after "
                             f"{timeout:.0f}s: {r.state_message}")
        await asyncio.sleep(0.5)


async def events(demo: Demo, name: str) -> list[dict[str, Any]]:
    from modelplane.serving.v1 import serving_pb2 as sv

    resp = await call("ListRolloutEvents", demo.stub("serving").ListRolloutEvents(
        sv.ListRolloutEventsRequest(name=name, page_size=200)))
    return [{"type": sv.RolloutEventType.Name(e.type).removeprefix("ROLLOUT_EVENT_TYPE_"),
             "state": state_name(e.state), "step": int(e.step), "weight": float(e.weight),
             "message": e.message, "actor": e.actor} for e in resp.events]


def summarize(run: RolloutRun, evs: list[dict[str, Any]]) -> dict[str, Any]:
    r = run.rollout
    return {"name": run.name, "challenger_version": run.challenger,
            "champion_version": int(r.champion_version) if r.champion_version else None,
            "state": state_name(r.state), "state_message": r.state_message,
            "current_step": int(r.current_step), "max_weight": run.max_weight,
            "requests": run.next_index - run.first_index,
            "first_index": run.first_index,
            "slice_rollback": r.state_message.startswith("rolled back: in the slice "),
            "events": evs, "finished": datetime.now(UTC).isoformat()}


async def observed(demo: Demo) -> int:
    return await observed_records(demo)
