"""``modelplane demo``: a model's whole life on a running platform, with progress bars.

    modelplane up --detach && modelplane demo [--data-dir DIR] [--fast]

Generate card transactions -> featurestore apply, ingest, materialize ->
point-in-time training Dataset -> train a scikit-learn model, logged with the
stock ``mlflow`` client naming the Dataset -> register with lineage ->
validate (report table) -> promote to ``champion`` (gated) -> serve with online
features -> train two challengers (one with a city's labels flipped) ->
validate -> a serving ``Rollout`` for each (10 -> 30 -> 50 %), live traffic in
rounds with each round's actuals after it: serving's controller rolls the
broken one back by its city before 50 % and promotes the better one through
the registry's gate -> drift and root cause name the city whose data shifted.
The platform is
left running; the URLs to look at are printed at the end, and a JSON summary
is written to ``<data-dir>/demo/summary.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from modelplane.cli.demo.report import print_urls
from modelplane.cli.demo.session import SIZES, Demo, DemoFailed
from modelplane.cli.demo.story import run
from modelplane.cli.platform import Platform


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=".modelplane",
                        help="data directory of the running platform (default ./.modelplane)")
    parser.add_argument("--fast", action="store_true",
                        help="smaller data and traffic (for tests and slow machines)")
    parser.add_argument("--summary", default="",
                        help="where to write the JSON summary "
                             "(default <data-dir>/demo/summary.json)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from rich.console import Console

    console = Console()
    data_dir = Path(args.data_dir).expanduser().resolve()
    platform = Platform.load(data_dir)
    if platform is None or not platform.admin_key_file.exists():
        console.print(f"[red]no running platform in {data_dir}[/]: start it with "
                      f"`modelplane up --detach --data-dir {args.data_dir}` first")
        return 2
    from modelplane.cli.health import all_serving, status_report

    if not all_serving(status_report(platform)):
        console.print(f"[red]the platform in {data_dir} is not healthy[/]; "
                      "see `modelplane status`")
        return 2
    demo = Demo(platform=platform, api_key=platform.admin_key_file.read_text().strip(),
                size=SIZES["fast" if args.fast else "full"], console=console)

    async def go() -> dict[str, Any]:
        try:
            return await run(demo)
        finally:
            await demo.close()

    summary_path = Path(args.summary) if args.summary else data_dir / "demo" / "summary.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = asyncio.run(go())
    except DemoFailed as exc:
        console.print(f"[red bold]demo stopped:[/] {exc}")
        demo.summary["error"] = str(exc)
        summary_path.write_text(json.dumps(demo.summary, indent=2, default=str))
        return 1
    summary["urls"] = print_urls(demo)
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"summary written to {summary_path} (took {summary['seconds']:.0f}s)")
    return 0
