"""``modelplane``: run the platform locally and talk to it.

    modelplane up [--demo] [--detach] [--data-dir DIR] [--base-port 7100]
                  [--replicas serving=2,observability=2] [--postgres DSN]
    modelplane demo [--data-dir DIR]
    modelplane down [--data-dir DIR]
    modelplane status [--json] [--data-dir DIR]
    modelplane validate --model NAME --version V --dataset ID --policy FILE [--json]
    modelplane keys create NAME --role ROLE [--expires 30d] | keys list | keys revoke NAME
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from modelplane.cli import keys
from modelplane.cli.health import all_serving, status_report
from modelplane.cli.platform import (
    DEFAULT_BASE_PORT,
    STATE_FILE,
    Platform,
    alive,
    instance_name,
    parse_replicas,
    service_database_urls,
)
from modelplane.cli.supervisor import BACKOFF, CRASH_LOOP, die_with_parent, kill_session
from modelplane.kit.progress import ProgressBoard
from modelplane.kit.settings import SERVICES


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser().resolve()


def _log_tail(platform: Platform, name: str, lines: int = 15) -> str:
    path = platform.data_dir / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _print_summary(platform: Platform, key: str, created: bool) -> None:
    print(f"modelplane is up (data directory {platform.data_dir})")
    for service in SERVICES:
        n = platform.replica_count(service)
        where = ", ".join(platform.grpc_address(service, r) for r in range(n))
        print(f"  {service:<14} grpc {where}" + (f"   ({n} replicas)" if n > 1 else ""))
    print(f"  {'gateway':<14} {platform.gateway_url}   "
          f"(OpenAPI: {platform.gateway_url}/openapi.json)")
    print(f"  {'MLflow UI':<14} {platform.mlflow_uri}")
    print(f"  {'OIP REST':<14} {platform.serving_http_url}/v2")
    print(f"  {'dashboard':<14} {platform.dashboard_url}")
    print(f"  {'metrics':<14} http://{platform.metrics_address(SERVICES[0])}/metrics ... "
          f"http://{platform.metrics_address(SERVICES[-1])}/metrics   (per-RPC, one per service)")
    if created:  # shown once, when made; later starts only say where it is
        print(f"  {'admin API key':<14} {key}   (new key, kept in {platform.admin_key_file}; "
              "send it as 'authorization: Bearer <key>')")
    else:
        print(f"  {'admin API key':<14} in {platform.admin_key_file} "
              "(`modelplane keys create` makes keys for people)")
    sys.stdout.flush()


def _stop_supervisor(platform: Platform, proc: subprocess.Popen[bytes] | None = None,
                     timeout: float = 40.0, board: ProgressBoard | None = None) -> None:
    """SIGTERM the supervisor (it stops every process), then sweep whatever is left.

    With a ``board``, each recorded process is a row: ``stopping`` until it is gone."""
    def watch() -> None:
        if board is None:
            return
        for name, child in platform.pids.items():
            if board.state(name) == "stopping" and not alive(child):
                board.set(name, "stopped", done=True)

    if board is not None:
        for name, child in platform.pids.items():
            if alive(child):
                board.add(name, "stopping")
    pid = proc.pid if proc is not None else platform.supervisor_pid
    if pid and alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            watch()
            if proc is not None:
                if proc.poll() is not None:
                    break
            elif not alive(pid):
                break
            time.sleep(0.1)
        if pid and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if proc is not None:
                proc.wait()
    # a supervisor that died without stopping them (SIGKILL): the processes it recorded
    for name, child in platform.pids.items():
        kill_session(child, grace=5.0)
        if board is not None and board.state(name) == "stopping":
            board.set(name, "stopped", done=True, detail="swept after the supervisor")
    (platform.data_dir / STATE_FILE).unlink(missing_ok=True)


def _running(platform: Platform | None) -> list[int]:
    if platform is None:
        return []
    pids = [*platform.pids.values(),
            *([platform.supervisor_pid] if platform.supervisor_pid else [])]
    return sorted(pid for pid in pids if alive(pid))


def _instance_health(report: dict[str, object]) -> dict[str, str]:
    """Health per process (``serving-2`` too), from a ``status_report``."""
    services = report["services"]
    assert isinstance(services, dict)
    out: dict[str, str] = {}
    for component, summary in services.items():
        replicas = summary.get("replicas") or [summary]
        for r, entry in enumerate(replicas):
            out[instance_name(component, r)] = str(entry["status"])
    return out


def startup_state(health: str, supervised: dict[str, object]) -> str:
    """What a person waiting for ``up`` is told of one process.

    ``starting`` (not answering yet), ``initialising`` (answering NOT_SERVING: its
    ``on_start`` opens stores and runs migrations; the health protocol does not
    say which), ``SERVING``; the supervisor's ``backoff`` and ``crash-loop`` win.
    """
    supervisor_state = supervised.get("state")
    if supervisor_state in (BACKOFF, CRASH_LOOP):
        return str(supervisor_state)
    if health == "SERVING":
        return "SERVING"
    if health == "NOT_SERVING":
        return "initialising"
    return "starting"


def _show_startup(board: ProgressBoard, platform: Platform, report: dict[str, object]) -> None:
    for name, health in _instance_health(report).items():
        state = startup_state(health, platform.instances.get(name, {}))
        restarts = platform.instances.get(name, {}).get("restarts") or 0
        board.set(name, state, done=state in ("SERVING", CRASH_LOOP),
                  detail=f"restarts {restarts}" if restarts else "")


def _wait_until_serving(platform: Platform, supervisor: subprocess.Popen[bytes],
                        board: ProgressBoard, timeout: float,
                        stopping: Callable[[], bool]) -> Platform | None:
    """Poll health until every process is SERVING (the platform as last loaded), showing
    each process's state on ``board``; None after stopping it on a failure or a signal."""
    data_dir, logs = platform.data_dir, platform.data_dir / "logs"
    for name, _component, _replica in platform.instance_names():
        board.add(name, "starting")
    deadline = time.monotonic() + timeout
    report = status_report(platform)
    while True:
        platform = Platform.load(data_dir) or platform
        _show_startup(board, platform, report)
        if all_serving(report):
            return platform
        if stopping():
            _stop_supervisor(platform, supervisor)
            return None
        if supervisor.poll() is not None:
            board.note(f"the supervisor exited with code {supervisor.returncode}; see "
                       f"{logs / 'supervisor.log'}", error=True)
            _stop_supervisor(platform, supervisor)
            return None
        looping = [name for name, view in platform.instances.items()
                   if view.get("state") == CRASH_LOOP]
        if looping:
            for name in looping:
                board.note(f"{platform.instances[name].get('message')}\nits log ends with:\n"
                           f"{_log_tail(platform, name)}", error=True)
            board.note("stopping: a part crash-looped before the platform was up", error=True)
            _stop_supervisor(platform, supervisor)
            return None
        if time.monotonic() > deadline:
            waiting = [n for n, h in _instance_health(report).items() if h != "SERVING"]
            board.note(f"not healthy after {timeout:.0f}s: {', '.join(waiting)}", error=True)
            for name in waiting:
                board.note(f"--- {name} log ---\n{_log_tail(platform, name)}", error=True)
            _stop_supervisor(platform, supervisor)
            return None
        time.sleep(0.5)
        report = status_report(platform)


def cmd_up(args: argparse.Namespace) -> int:
    unavailable = demo_unavailable() if args.demo else ""
    if unavailable:  # said before anything starts, not after the platform is up
        print(unavailable, file=sys.stderr)
        return 2
    data_dir = _data_dir(args)
    running = _running(Platform.load(data_dir))
    if running:
        print(f"modelplane is already running from {data_dir} "
              f"(pids {running}); `modelplane down` stops it.", file=sys.stderr)
        return 1
    try:
        replicas = parse_replicas(args.replicas or "")
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    dsn = args.postgres or os.environ.get("MODELPLANE_POSTGRES", "")
    if any(n > 1 for n in replicas.values()) and not dsn:
        print("--replicas with more than one process per service needs PostgreSQL "
              "(--postgres DSN or MODELPLANE_POSTGRES): the embedded stores are SQLite and "
              "DuckDB files, which one process at a time may write; several replicas on "
              "them would corrupt or lock each other out.", file=sys.stderr)
        return 2
    platform = Platform(data_dir=data_dir, base_port=args.base_port,
                        replicas={k: v for k, v in replicas.items() if v > 1},
                        postgres=bool(dsn))
    keys.make_private_dir(data_dir)
    key, created = platform.ensure_keys()
    env = platform.environment()
    # each process gets its own identity (least role, never admin), by file, not argv:
    # Platform.instance_environment hands each its own; the supervisor holds none
    keys.provision_service_keys(data_dir, platform.keys_file)
    env.pop("MODELPLANE_API_KEY", None)
    if dsn:
        try:
            urls = service_database_urls(dsn)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the server is told
            print(f"cannot prepare the services' databases on PostgreSQL: {exc}",
                  file=sys.stderr)
            return 2
        for service, url in urls.items():
            env[f"MODELPLANE_{service.upper()}_DATABASE_URL"] = url
    platform.save()

    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "modelplane.cli.supervisor", "--data-dir", str(data_dir)]
    if args.detach:
        # a session of its own: it outlives this command; its messages go to a log
        with open(logs / "supervisor.log", "ab") as log:
            supervisor = subprocess.Popen(command, env=env, stdout=log,
                                          stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
    else:
        # beside this command: its messages on our terminal; it stops if we are killed
        supervisor = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                      preexec_fn=die_with_parent)  # noqa: PLW1509

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    n = len(platform.instance_names())
    board = ProgressBoard()
    board.note(f"starting {n} processes under a supervisor (logs in {logs}) ...")
    with board:
        ready = _wait_until_serving(platform, supervisor, board, args.timeout,
                                    lambda: stopping)
    if ready is None:
        return 1
    platform = ready

    _print_summary(platform, key, created)
    if args.demo:
        # Ctrl-C interrupts the demo as it always did (the supervisor, in our process
        # group, stops the platform on the same SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            code = cmd_demo(["--data-dir", str(data_dir)])
        except KeyboardInterrupt:
            if not args.detach:
                _stop_supervisor(platform, supervisor)
            return 130
        signal.signal(signal.SIGINT, on_signal)
        if code != 0:
            print(f"the demo stopped with exit code {code}; the platform keeps running",
                  file=sys.stderr)
    if args.detach:
        print(f"running in the background under a supervisor (pid {supervisor.pid}: it "
              "restarts a part that crashes); `modelplane status` checks it, "
              "`modelplane down` stops it.")
        return 0

    print("press Ctrl-C to stop", flush=True)
    while not stopping and supervisor.poll() is None:
        time.sleep(0.5)
    platform = Platform.load(data_dir) or platform  # the pids the supervisor recorded
    with ProgressBoard() as board:
        board.note("stopping ...")
        _stop_supervisor(platform, supervisor, board=board)
    print("stopped")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    platform = Platform.load(data_dir)
    if platform is None:
        print(f"no platform recorded in {data_dir}")
        return 0
    running = _running(platform)
    with ProgressBoard() as board:
        _stop_supervisor(platform, board=board)
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
            extra = ""
            if "state" in entry:
                extra = f"{entry['state']}, restarts {entry['restarts']}"
                if entry.get("last_exit_code") is not None:
                    extra += f", last exit code {entry['last_exit_code']}"
            print(f"{name:<14} {entry['status']:<12} {where:<22} {extra}")
            for replica in entry.get("replicas", [])[1:]:
                print(f"{'':<14} {replica['status']:<12} {replica['grpc']:<22} "
                      f"{replica.get('state', '')}, restarts {replica.get('restarts', 0)}")
            if entry.get("state") == CRASH_LOOP:
                print(f"{'':<14} {entry.get('message')}")
            for replica in entry.get("replicas", []):
                if replica.get("state") == CRASH_LOOP and replica is not entry["replicas"][0]:
                    print(f"{'':<14} {replica.get('message')}")
        print(f"{'mlflow':<14} {'':<12} {platform.mlflow_uri}")
    return 0 if all_serving(report) else 1


def cmd_validate(argv: list[str]) -> int:
    try:
        from modelplane.validator.cli import main as validate_main
    except ImportError:
        print("the validator package is not installed", file=sys.stderr)
        return 2
    return int(validate_main(argv))


def demo_unavailable() -> str:
    """Why the demo cannot run here (its extra is not installed), or ``""``."""
    from modelplane.cli.demo import missing_modules, unavailable_message

    missing = missing_modules()
    return unavailable_message(missing) if missing else ""


def cmd_demo(argv: list[str]) -> int:
    unavailable = demo_unavailable()
    if unavailable:
        print(unavailable, file=sys.stderr)
        return 2
    from modelplane.cli.demo.command import main as demo_main

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
                            "OIP REST +14, dashboard +15, /metrics +16..+20; replica r of a "
                            "service adds 25*r (default 7100)")

    up = sub.add_parser("up", help="start every service and the gateway")
    common(up)
    up.add_argument("--detach", action="store_true", help="return once healthy, leave running")
    up.add_argument("--timeout", type=float, default=300.0,
                    help="seconds to wait for health (default 300: cold imports and MLflow's "
                         "first start are slow on a busy machine)")
    up.add_argument("--demo", action="store_true",
                    help="once healthy, run the lifecycle demo (`modelplane demo`) against it")
    up.add_argument("--replicas", default="",
                    help="processes per service, e.g. serving=2,observability=2 (needs "
                         "PostgreSQL: the embedded files are single-writer); the gateway "
                         "and peers balance over them round robin")
    up.add_argument("--postgres", default="", metavar="DSN",
                    help="run every service on PostgreSQL (postgresql://user@host/db: one "
                         "database per service, db_<service>, created if missing); default "
                         "$MODELPLANE_POSTGRES, else embedded files")
    down = sub.add_parser("down", help="stop a detached platform (its supervisor and "
                                       "every process under it)")
    common(down)
    status = sub.add_parser("status", help="health of every part")
    common(status)
    status.add_argument("--json", action="store_true")
    sub.add_parser("validate", help="run a validation suite (CI entry point)", add_help=False)
    sub.add_parser("demo", help="the lifecycle demo against a running platform", add_help=False)
    keys.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        return cmd_validate(argv[1:])
    if argv and argv[0] == "demo":
        return cmd_demo(argv[1:])
    args = build_parser().parse_args(argv)
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "keys": keys.cmd_keys}
    return handlers[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
