"""The whole story, stage by stage: data, champion, serving, two challengers, a rollout
for each driven by live traffic (with a shift) and its actuals, analysis, and the
controller's decisions: the one broken in a city rolled back, the better one promoted.
The demo itself sets no traffic split or alias after the champion's."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from modelplane.cli.demo import rollouts
from modelplane.cli.demo.analysis import analyse, drift_monitor, observed_records
from modelplane.cli.demo.features import stage_data
from modelplane.cli.demo.models import set_alias, train_register, validate
from modelplane.cli.demo.report import print_canary
from modelplane.cli.demo.session import DEPLOYMENT, MODEL, Demo, DemoFailed, call
from modelplane.cli.demo.traffic import deploy


async def run(demo: Demo) -> dict[str, Any]:
    from rich.progress import Progress  # noqa: F401 - fail early when rich is missing

    from modelplane.kit import demo_data
    from modelplane.registry.v1 import registry_pb2 as rg
    from modelplane.validator.v1 import validator_pb2 as vd

    started = time.monotonic()
    history, datasets, frames = await stage_data(demo)
    holdout_id = datasets["fraud_holdout"].id

    demo.stage(4, "Train the first model (stock MLflow client) and register it with lineage")
    champion = await train_register(demo, "logistic_numeric", datasets, frames, "first model")
    demo.summary.update({"model": MODEL, "champion_version": champion})

    demo.stage(5, f"Validate v{champion} and promote it to champion (gated)")
    report = await validate(demo, champion, holdout_id, skip_baseline=True)
    promoted = await set_alias(demo, "champion", champion)
    demo.summary["champion_promoted"] = promoted
    if not promoted:
        raise DemoFailed(f"v{champion} did not pass validation ({report.summary}); "
                         "the demo stops here rather than override the gate")

    demo.stage(6, "Serve the champion with online features")
    await deploy(demo)

    demo.stage(7, "Train two challengers, validate them against the champion")
    challenger = await train_register(demo, "logistic_all_features", datasets, frames,
                                      "challenger")
    demo.summary["challenger_version"] = challenger
    challenger_report = await validate(demo, challenger, holdout_id, skip_baseline=False)
    broken_city = demo_data.BROKEN_CITY
    demo.console.print(f"a second challenger, trained on data whose {broken_city} labels a "
                       "labeling bug flipped (as good elsewhere, wrong in one city):")
    broken = await train_register(
        demo, "logistic_all_features", datasets, frames,
        f"challenger trained with {broken_city}'s labels flipped",
        train=demo_data.flip_city_labels(frames["fraud_train"], broken_city))
    demo.summary["broken_challenger_version"] = broken
    demo.summary["broken_city"] = broken_city
    broken_report = await validate(demo, broken, holdout_id, skip_baseline=False)

    traffic = await asyncio.to_thread(demo_data.live_traffic, history, demo.size.requests,
                                      shift_at=demo.size.requests // 3)
    n = len(traffic.rows)
    records = await observed_records(demo)
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    shift: dict[str, datetime] = {}

    async def mark_shift(i: int) -> None:
        if i >= traffic.shift_at and "time" not in shift:
            await asyncio.sleep(1.0)
            shift["time"] = datetime.now(UTC)
            await asyncio.sleep(1.0)
            demo.console.print(f"[yellow]from request {i} on, {demo_data.SHIFTED_CITY}'s "
                               "transactions shift (bigger amounts, a fraud ring)[/]")

    def finished(run: rollouts.RolloutRun) -> bool:
        return run.state in rollouts.TERMINAL

    demo.stage(8, f"Rollout of v{broken} (broken in {broken_city}): the controller decides")
    override = _override(vd, broken_report, broken)
    bad_run = rollouts.RolloutRun(f"{DEPLOYMENT}-v{broken}", broken, 0)
    await rollouts.create(demo, bad_run.name, broken, override)
    # at most half the stream: the rest is the second rollout's
    records = await rollouts.drive(demo, bad_run, traffic, records=records, until=finished,
                                   limit=n // 2, on_round=mark_shift)
    bad_run.rollout = await rollouts.wait_terminal(demo, bad_run.name)
    demo.console.print(f"rollout {bad_run.name}: [bold]{bad_run.state}[/] - "
                       f"{bad_run.rollout.state_message}")

    demo.stage(9, f"Rollout of v{challenger}: live traffic in rounds, actuals a round later; "
                  f"{demo_data.SHIFTED_CITY} shifts")
    override = _override(vd, challenger_report, challenger)
    run = rollouts.RolloutRun(f"{DEPLOYMENT}-v{challenger}", challenger, bad_run.next_index,
                              bad_run.next_index)
    await rollouts.create(demo, run.name, challenger, override)

    def decided_and_shifted(r: rollouts.RolloutRun) -> bool:
        # after the decision live traffic goes on (all to @champion) until the shifted
        # part of the stream is long enough for the drift analysis
        return finished(r) and r.next_index >= traffic.shift_at + n // 4

    records = await rollouts.drive(demo, run, traffic, records=records,
                                   until=decided_and_shifted, limit=n, on_round=mark_shift)
    predictions = sorted(bad_run.predictions + run.predictions, key=lambda p: p.index)
    shift_time = shift.get("time") or datetime.now(UTC)
    demo.summary["traffic"] = {
        "requests": len(predictions), "routes": dict(Counter(p.route for p in predictions)),
        "by_version": dict(Counter(p.version for p in predictions)),
        "t0": t0.isoformat(), "shift_time": shift_time.isoformat(),
        "customer_id": int(traffic.rows["customer_id"].iloc[0]),
        "prediction_ids": [p.prediction_id for p in predictions]}
    t1 = datetime.now(UTC) + timedelta(seconds=1)
    versions = Counter(p.version for p in predictions)
    demo.console.print(f"{len(predictions)} predictions: " + ", ".join(
        f"v{k} {v} ({v / len(predictions):.0%})" for k, v in versions.most_common()))
    version_of = {"champion": str(champion), "challenger": str(challenger),
                  "broken challenger": str(broken)}

    demo.stage(10, "Actuals joined in observability, then drift and root cause")
    actuals = {"accepted": bad_run.actuals_accepted + run.actuals_accepted,
               "unmatched": bad_run.actuals_unmatched + run.actuals_unmatched}
    demo.summary["actuals"] = actuals
    demo.console.print(f"actuals (sent round by round): {actuals['accepted']} joined to their "
                       f"predictions, {actuals['unmatched']} not matched")
    analysis = await analyse(demo, t0, shift_time, t1, version_of)
    demo.summary["traffic"]["t1"] = t1.isoformat()
    demo.summary["analysis"] = analysis
    monitor_id = await drift_monitor(demo, str(champion))

    demo.stage(11, "The rollout controller's decisions (no client-side decision)")
    print_canary(demo, analysis["by_version"])
    run.rollout = await rollouts.wait_terminal(demo, run.name)
    results = {}
    for r in (bad_run, run):
        evs = await rollouts.events(demo, r.name)
        results[r.name] = rollouts.summarize(r, evs)
        color = "green" if r.state == "PROMOTED" else "yellow"
        demo.console.print(f"[{color}]v{r.challenger} {r.state}[/] by the controller: "
                           f"{r.rollout.state_message}")
        for e in evs:
            demo.console.print(f"    {e['type']:<12} step {e['step']} {e['weight']:g}%  "
                               f"{e['message'][:140]}")
    demo.summary["rollouts"] = results
    decision = {"PROMOTED": "promoted", "ROLLED_BACK": "rolled_back",
                "FAILED": "failed"}.get(run.state, run.state.lower())
    final = await call("GetAlias", demo.stub("registry").GetAlias(
        rg.GetAliasRequest(model_name=MODEL, alias="champion")))
    demo.console.print(f"champion is v{final.version}; all traffic goes to it")

    demo.summary.update({
        "deployment": DEPLOYMENT, "final_champion_version": int(final.version),
        "decision": decision, "broken_decision": bad_run.state.lower(),
        "monitor_id": monitor_id, "seconds": round(time.monotonic() - started, 1)})
    return demo.summary


def _override(vd: Any, report: Any, version: int) -> str:
    """Serving routes traffic only to PASS versions unless an admin gives an audited
    reason; the registry still refuses to promote such a version (the rollout FAILs)."""
    if report.status == vd.CHECK_STATUS_PASS:
        return ""
    return (f"demo: rollout of v{version} ({vd.CheckStatus.Name(report.status)}) to measure "
            "it on live traffic")
