"""``modelplane lineage PREDICTION_ID``: where one prediction comes from.

Asks the gateway (``GET /v1/predictions/{prediction_id}/lineage``, observability's
GetPredictionLineage) with a key of the caller's: ``$MODELPLANE_API_KEY``, else
the file named by ``--key-file``, else the local platform's admin key
(``<data dir>/admin.key``). The gateway is ``--gateway``, else the local
platform's (``<data dir>/platform.json``), else ``http://127.0.0.1:7100``.

Prints the version, its run, training dataset (and hash), validation report,
the rollout step and the trace id, then what could not be fetched and why;
``--json`` prints the gateway's answer as it came. Exit 0 with an answer (also
a partial one), 1 when the prediction is unknown or the call is refused, 2
when the gateway cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelplane.kit.settings import DEFAULT_PORTS


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lineage", help="where one prediction comes from: version, run, "
                                       "dataset, validation report, rollout step, trace")
    p.add_argument("prediction_id")
    p.add_argument("--data-dir", default=".modelplane",
                   help="the local platform's data directory (default ./.modelplane)")
    p.add_argument("--gateway", default=None,
                   help="the gateway's URL (default: the local platform's)")
    p.add_argument("--key-file", default=None,
                   help="a file holding the API key (default $MODELPLANE_API_KEY, else "
                        "<data dir>/admin.key)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")


def _gateway(args: argparse.Namespace) -> str:
    if args.gateway:
        return str(args.gateway).rstrip("/")
    from modelplane.cli.platform import Platform

    platform = Platform.load(Path(args.data_dir))
    if platform is not None:
        return platform.gateway_url
    return f"http://127.0.0.1:{DEFAULT_PORTS['gateway']}"


def _key(args: argparse.Namespace) -> str:
    if os.environ.get("MODELPLANE_API_KEY"):
        return os.environ["MODELPLANE_API_KEY"].strip()
    path = Path(args.key_file) if args.key_file else Path(args.data_dir) / "admin.key"
    return path.read_text().strip() if path.is_file() else ""


def cmd_lineage(args: argparse.Namespace) -> int:
    import httpx

    url = f"{_gateway(args)}/v1/predictions/{quote(args.prediction_id, safe='')}/lineage"
    key = _key(args)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        resp = httpx.get(url, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        print(f"the gateway at {url} did not answer: {exc}", file=sys.stderr)
        return 2
    if resp.status_code != 200:
        try:
            message = resp.json().get("message", resp.text)
        except ValueError:
            message = resp.text
        print(f"{resp.status_code}: {message}", file=sys.stderr)
        return 1
    body: dict[str, Any] = resp.json()
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(describe(body))
    return 0


def _camel(v: Any) -> Any:
    """JSON field names as lowerCamelCase (the gateway may preserve proto names)."""
    if isinstance(v, dict):
        return {(k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:])): _camel(x)
                for k, x in v.items()}
    if isinstance(v, list):
        return [_camel(x) for x in v]
    return v


def describe(body: dict[str, Any]) -> str:
    """The lineage for people, one fact a line."""
    b = _camel(body)
    rows = [("prediction", b.get("record", {}).get("predictionId", "")),
            ("model", f"{b.get('model', '')} version {b.get('version', '')}"),
            ("deployment", b.get("deployment", "")), ("route", b.get("route", "")),
            ("trace id", b.get("traceId", ""))]
    mv = b.get("modelVersion")
    if mv:
        rows += [("run", mv.get("runId", "")), ("dataset", mv.get("datasetId", "")),
                 ("features", ", ".join(mv.get("featureRefs", []))),
                 ("code version", mv.get("codeVersion", ""))]
    ds = b.get("dataset")
    if ds:
        rows.append(("dataset hash", ds.get("contentHash", "")))
    val = b.get("validation")
    if val:
        rows.append(("validation", f"{val.get('reportId', '')} {val.get('status', '')}".strip()))
        if val.get("datasetSha256"):
            rows.append(("validated on", f"{val.get('dataset', '')} "
                                         f"(sha256 {val['datasetSha256']})"))
    ro = b.get("rollout")
    if ro:
        rows.append(("rollout", f"{ro.get('rollout', '')} step {ro.get('step', 0)} "
                                f"({ro.get('challengerWeight', 0)} % challenger), "
                                f"{ro.get('role', '')}"))
    elif b.get("rolloutNote"):
        rows.append(("rollout", b["rolloutNote"]))
    for m in b.get("missing", []):
        rows.append(("missing", f"{m.get('part', '')} from {m.get('service', '')}: "
                                f"{m.get('reason', '')}"))
    return "\n".join(f"{k:<14} {v}" for k, v in rows if v)


__all__ = ["add_parser", "cmd_lineage", "describe"]
