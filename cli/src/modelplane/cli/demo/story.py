"""The whole story, stage by stage: data, champion, serving, challenger, canary, live
traffic with a shift, analysis, and the decision to promote or roll back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from modelplane.cli.demo.analysis import (
    analyse,
    drift_monitor,
    observed_records,
    send_actuals,
    wait_records,
)
from modelplane.cli.demo.features import stage_data
from modelplane.cli.demo.models import set_alias, train_register, validate
from modelplane.cli.demo.report import print_canary
from modelplane.cli.demo.session import CANARY_PERCENT, DEPLOYMENT, MODEL, Demo, DemoFailed, call
from modelplane.cli.demo.traffic import deploy, route, send_traffic, wait_ready


async def run(demo: Demo) -> dict[str, Any]:
    from rich.progress import Progress  # noqa: F401 - fail early when rich is missing

    from modelplane.cli.demo import data as demo_data
    from modelplane.registry.v1 import registry_pb2 as rg
    from modelplane.serving.v1 import serving_pb2 as sv
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

    demo.stage(7, "Train a challenger, validate it against the champion")
    challenger = await train_register(demo, "logistic_all_features", datasets, frames,
                                      "challenger")
    demo.summary["challenger_version"] = challenger
    challenger_report = await validate(demo, challenger, holdout_id, skip_baseline=False)
    await set_alias(demo, "challenger", challenger)

    demo.stage(8, f"Canary: {CANARY_PERCENT:g}% of the traffic to the challenger")
    # Serving routes traffic only to PASS versions unless an admin overrides with a
    # reason (audited): a challenger that only warned gets its canary that way.
    override = "" if challenger_report.status == vd.CHECK_STATUS_PASS else (
        f"demo: {CANARY_PERCENT:g}% canary of challenger v{challenger} "
        f"({vd.CheckStatus.Name(challenger_report.status)}) to measure it on live traffic")
    if override:
        demo.console.print(f"[yellow]validation override[/] (audited): {override}")
    split = sv.SetTrafficSplitRequest(
        name=DEPLOYMENT, traffic_split=sv.TrafficSplit(routes=[
            route("champion", 100 - CANARY_PERCENT), route("challenger", CANARY_PERCENT)]),
        validation_override_reason=override)
    d = await call("SetTrafficSplit", demo.stub("serving").SetTrafficSplit(split))
    with demo.progress() as progress:
        task = progress.add_task("load the challenger", total=None)
        d = await wait_ready(demo, progress, task)
    demo.console.print("traffic split: " + ", ".join(
        f"{r.label} {r.weight:g}" for r in d.traffic_split.routes) + "; loaded: " + ", ".join(
        f"v{m.version}" for m in d.loaded_models))
    demo.summary["canary"] = {"routes": {r.label: r.weight for r in d.traffic_split.routes}}

    demo.stage(9, f"Live traffic with online features; halfway, {demo_data.SHIFTED_CITY} shifts")
    traffic = await asyncio.to_thread(demo_data.live_traffic, history, demo.size.requests)
    n = len(traffic.rows)
    records_before = await observed_records(demo)
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    with demo.progress() as progress:
        task = progress.add_task("requests, first half", total=traffic.shift_at)
        first = await send_traffic(demo, traffic.rows, traffic.labels, range(traffic.shift_at),
                                   progress, task)
        await asyncio.sleep(1.0)
        shift_time = datetime.now(UTC)
        await asyncio.sleep(1.0)
        task = progress.add_task(f"requests, {demo_data.SHIFTED_CITY} shifted",
                                 total=n - traffic.shift_at)
        second = await send_traffic(demo, traffic.rows, traffic.labels,
                                    range(traffic.shift_at, n), progress, task)
    predictions = sorted(first + second, key=lambda p: p.index)
    demo.summary["traffic"] = {
        "requests": len(predictions), "routes": dict(Counter(p.route for p in predictions)),
        "by_version": dict(Counter(p.version for p in predictions)),
        "t0": t0.isoformat(), "shift_time": shift_time.isoformat(),
        "customer_id": int(traffic.rows["customer_id"].iloc[0]),
        "prediction_ids": [p.prediction_id for p in predictions]}
    t1 = datetime.now(UTC) + timedelta(seconds=1)
    routes = Counter(p.route for p in predictions)
    demo.console.print(f"{len(predictions)} predictions: " + ", ".join(
        f"{k} {v} ({v / len(predictions):.0%})" for k, v in routes.most_common()))
    version_of = {"champion": str(champion), "challenger": str(challenger)}

    demo.stage(10, "Delayed actuals to observability, then drift and root cause")
    with demo.progress() as progress:
        task = progress.add_task("predictions logged by serving", total=len(predictions))
        await wait_records(demo, records_before, len(predictions), progress, task)
        task = progress.add_task("actuals (labels arrive days later)", total=1)
        actuals = await send_actuals(demo, predictions)
        demo.summary["actuals"] = {"accepted": int(actuals.accepted_count),
                                   "unmatched": int(actuals.unmatched_count)}
        progress.update(task, completed=1)
    demo.console.print(f"actuals: {actuals.accepted_count} accepted, "
                       f"{actuals.unmatched_count} not matched to a prediction")
    analysis = await analyse(demo, t0, shift_time, t1, version_of)
    demo.summary["traffic"]["t1"] = t1.isoformat()
    demo.summary["analysis"] = analysis
    monitor_id = await drift_monitor(demo, str(champion))

    demo.stage(11, "Promote the challenger or roll back, by the numbers")
    champ, chall = analysis["by_version"]["champion"], analysis["by_version"]["challenger"]
    print_canary(demo, analysis["by_version"])
    passed = challenger_report.status == vd.CHECK_STATUS_PASS
    better = (chall["accuracy"] is not None and champ["accuracy"] is not None
              and chall["accuracy"] >= champ["accuracy"]
              and (chall["f1"] or 0) >= (champ["f1"] or 0))
    serving = demo.stub("serving")
    if passed and better and await set_alias(demo, "champion", challenger):
        decision = "promoted"
        demo.console.print(f"[green]challenger v{challenger} promoted[/]: accuracy "
                           f"{chall['accuracy']:.3f} vs {champ['accuracy']:.3f}, F1 "
                           f"{chall['f1'] or 0:.3f} vs {champ['f1'] or 0:.3f}")
    else:
        decision = "rolled_back"
        why = "its validation did not PASS" if not passed else "it was not better on live traffic"
        demo.console.print(f"[yellow]challenger v{challenger} rolled back[/]: {why}")
    await call("SetTrafficSplit", serving.SetTrafficSplit(sv.SetTrafficSplitRequest(
        name=DEPLOYMENT, traffic_split=sv.TrafficSplit(routes=[route("champion", 100)]))))
    await call("DeleteAlias", demo.stub("registry").DeleteAlias(rg.DeleteAliasRequest(
        model_name=MODEL, alias="challenger", reason=f"canary {decision}")))
    final = await call("GetAlias", demo.stub("registry").GetAlias(
        rg.GetAliasRequest(model_name=MODEL, alias="champion")))
    demo.console.print(f"champion is v{final.version}; all traffic goes to it")

    demo.summary.update({
        "deployment": DEPLOYMENT, "final_champion_version": int(final.version),
        "decision": decision, "monitor_id": monitor_id,
        "seconds": round(time.monotonic() - started, 1)})
    return demo.summary
