"""``modelplane``: run the platform locally and talk to it.

    modelplane up [--demo] [--detach] [--data-dir DIR] [--base-port 7100]
    modelplane demo [--data-dir DIR]
    modelplane down [--data-dir DIR]
    modelplane status [--json] [--data-dir DIR]
    modelplane validate --model NAME --version V --dataset ID --policy FILE [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from modelplane.cli.health import grpc_status, http_status
from modelplane.cli.platform import (
    COMPONENTS,
    DEFAULT_BASE_PORT,
    Platform,
    alive,
    start_process,
    stop_pids,
)
from modelplane.kit.settings import SERVICES


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser().resolve()


def status_report(platform: Platform) -> dict[str, object]:
    services: dict[str, dict[str, str]] = {}
    for service in SERVICES:
        address = platform.grpc_address(service)
        services[service] = {"grpc": address, "status": grpc_status(address)}
    services["gateway"] = {"http": platform.gateway_url,
                           "status": http_status(platform.gateway_url)}
    key = platform.admin_key_file.read_text().strip() if platform.admin_key_file.exists() else ""
    return {"services": services, "mlflow": {"tracking_uri": platform.mlflow_uri},
            "api_key": key}


def _all_serving(report: dict[str, object]) -> bool:
    services = report["services"]
    assert isinstance(services, dict)
    return all(s["status"] == "SERVING" for s in services.values())


def _log_tail(platform: Platform, name: str, lines: int = 15) -> str:
    path = platform.data_dir / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _print_summary(platform: Platform, key: str, created: bool) -> None:
    print(f"modelplane is up (data directory {platform.data_dir})")
    for service in SERVICES:
        print(f"  {service:<14} grpc {platform.grpc_address(service)}")
    print(f"  {'gateway':<14} {platform.gateway_url}   (OpenAPI: {platform.gateway_url}/openapi.json)")
    print(f"  {'MLflow UI':<14} {platform.mlflow_uri}")
    print(f"  {'OIP REST':<14} {platform.serving_http_url}/v2")
    print(f"  {'dashboard':<14} {platform.dashboard_url}")
    note = "new key, " if created else ""
    print(f"  {'admin API key':<14} {key}   ({note}kept in {platform.admin_key_file}; "
          "send it as 'authorization: Bearer <key>')")
    sys.stdout.flush()


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    previous = Platform.load(data_dir)
    if previous and any(alive(pid) for pid in previous.pids.values()):
        print(f"modelplane is already running from {data_dir} "
              f"(pids {sorted(previous.pids.values())}); `modelplane down` stops it.",
              file=sys.stderr)
        return 1
    platform = Platform(data_dir=data_dir, base_port=args.base_port)
    key, created = platform.ensure_keys()
    env = platform.environment()
    env["MODELPLANE_API_KEY"] = platform.service_key()

    procs = {name: start_process(platform, name, env, args.detach) for name in COMPONENTS}
    platform.pids = {name: p.pid for name, p in procs.items()}
    platform.save()

    def stop_all() -> None:
        stop_pids(platform.pids)
        for p in procs.values():
            with contextlib.suppress(Exception):  # best effort reaping
                p.wait(timeout=1)
        (platform.data_dir / "platform.json").unlink(missing_ok=True)

    print(f"starting {len(procs)} processes (logs in {data_dir / 'logs'}) ...", flush=True)
    deadline = time.monotonic() + args.timeout
    report = status_report(platform)
    while not _all_serving(report):
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; its log ends with:\n"
                      f"{_log_tail(platform, name)}", file=sys.stderr)
                stop_all()
                return 1
        if time.monotonic() > deadline:
            services = report["services"]
            assert isinstance(services, dict)
            waiting = [n for n, s in services.items() if s["status"] != "SERVING"]
            print(f"not healthy after {args.timeout:.0f}s: {', '.join(waiting)}", file=sys.stderr)
            for name in waiting:
                print(f"--- {name} log ---\n{_log_tail(platform, name)}", file=sys.stderr)
            stop_all()
            return 1
        time.sleep(0.5)
        report = status_report(platform)

    _print_summary(platform, key, created)
    if args.demo:
        code = cmd_demo(["--data-dir", str(data_dir)])
        if code != 0:
            print(f"the demo stopped with exit code {code}; the platform keeps running",
                  file=sys.stderr)
    if args.detach:
        print("running in the background; `modelplane status` checks it, `modelplane down` stops it.")
        return 0

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("press Ctrl-C to stop", flush=True)
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping the platform",
                      file=sys.stderr)
                stopping = True
                break
        time.sleep(0.5)
    print("stopping ...", flush=True)
    stop_all()
    print("stopped")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    platform = Platform.load(data_dir)
    if platform is None:
        print(f"no platform recorded in {data_dir}")
        return 0
    running = {n: pid for n, pid in platform.pids.items() if alive(pid)}
    stop_pids(running)
    (data_dir / "platform.json").unlink(missing_ok=True)
    print(f"stopped {len(running)} processes")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    platform = Platform.load(data_dir) or Platform(data_dir=data_dir, base_port=args.base_port)
    report = status_report(platform)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        services = report["services"]
        assert isinstance(services, dict)
        for name, entry in services.items():
            where = entry.get("grpc") or entry.get("http")
            print(f"{name:<14} {entry['status']:<12} {where}")
        print(f"{'mlflow':<14} {'':<12} {platform.mlflow_uri}")
    return 0 if _all_serving(report) else 1


def cmd_validate(argv: list[str]) -> int:
    try:
        from modelplane.validator.cli import main as validate_main
    except ImportError:
        print("the validator package is not installed", file=sys.stderr)
        return 2
    return int(validate_main(argv))


def cmd_demo(argv: list[str]) -> int:
    try:
        from modelplane.cli.demo import main as demo_main
    except ImportError:
        print("`modelplane demo` is not built yet (see the lifecycle issue)", file=sys.stderr)
        return 2
    return int(demo_main(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelplane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=".modelplane",
                       help="where embedded data, keys and logs live (default ./.modelplane)")
        p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                       help="gateway port; services use the next five, MLflow +10, "
                            "OIP REST +14, dashboard +15 (default 7100)")

    up = sub.add_parser("up", help="start every service and the gateway")
    common(up)
    up.add_argument("--detach", action="store_true", help="return once healthy, leave running")
    up.add_argument("--timeout", type=float, default=300.0,
                    help="seconds to wait for health (default 300: cold imports and MLflow's "
                         "first start are slow on a busy machine)")
    up.add_argument("--demo", action="store_true",
                    help="once healthy, run the lifecycle demo (`modelplane demo`) against it")
    down = sub.add_parser("down", help="stop a detached platform")
    common(down)
    status = sub.add_parser("status", help="health of every part")
    common(status)
    status.add_argument("--json", action="store_true")
    sub.add_parser("validate", help="run a validation suite (CI entry point)", add_help=False)
    sub.add_parser("demo", help="the lifecycle demo against a running platform", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        return cmd_validate(argv[1:])
    if argv and argv[0] == "demo":
        return cmd_demo(argv[1:])
    args = build_parser().parse_args(argv)
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    return handlers[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
