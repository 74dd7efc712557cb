"""`python -m flink_runbook.demo stack up|down|fault`: the demo's realtime-pipeline stack by hand (Docker).

The demo's own commands, not the runbook's: `flink-runbook` looks after any cluster of an inventory.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import docker.errors

from flink_runbook.demo import faults
from flink_runbook.demo.image import ImageBuildError
from flink_runbook.demo.job import JobBuildError, start_demo_job, start_sql_job
from flink_runbook.demo.stack import (
    COMPOSE_FILE,
    FLINK_PROPERTIES_COMPOSE_FILE,
    DemoStack,
    StackError,
    StackSettings,
)
from flink_runbook.demo.versions import REPO_ROOT, UnsupportedFlinkVersion, resolve_flink_version
from flink_runbook.polling import WaitTimeout

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FAULTS = {
    "freeze-taskmanager": ("taskmanager", faults.freeze),
    "thaw-taskmanager": ("taskmanager", faults.thaw),
    "kill-taskmanager": ("taskmanager", faults.kill),
    "stop-taskmanager": ("taskmanager", faults.stop),
    "oom-taskmanager": ("taskmanager", faults.exhaust_memory),
    "stop-jobmanager": ("jobmanager", faults.stop),
}


def _stack_settings(args: argparse.Namespace) -> StackSettings:
    return StackSettings(
        data_dir=Path(args.data_dir),
        project=args.project,
        flink_version=resolve_flink_version(args.flink_version),
        rest_port=args.rest_port,
        image=args.image,
        compose_file=FLINK_PROPERTIES_COMPOSE_FILE if args.flink_properties else COMPOSE_FILE,
    )


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def stack_up(args: argparse.Namespace) -> int:
    stack = DemoStack(_stack_settings(args))
    print(f"Starting demo stack '{stack.settings.project}' (Flink {stack.settings.flink_version}) ...", flush=True)
    stack.up()
    if not args.no_job:
        print(f"Demo job realtime-cdc-demo RUNNING as {start_demo_job(stack)}")
        # stack/inventory.yaml lists the SQL job too.
        print(f"SQL job realtime-sql-demo RUNNING as {start_sql_job(stack)}")
    print(f"Flink REST / web UI: {stack.settings.rest_url}")
    print(f"CSV output:          {stack.output_dir}")
    print(f"Checkpoints:         {stack.checkpoint_dir}")
    print(f"SQL job output:      {stack.sql_output_dir} (checkpoints {stack.sql_checkpoint_dir})")
    return EXIT_OK


def stack_down(args: argparse.Namespace) -> int:
    DemoStack(_stack_settings(args)).down()
    print(f"Demo stack '{args.project}' removed")
    return EXIT_OK


def stack_fault(args: argparse.Namespace) -> int:
    service, inject = FAULTS[args.fault]
    container = DemoStack(_stack_settings(args)).container(service)
    inject(container)
    print(f"{args.fault}: done on container {container.name}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flink_runbook.demo stack", description="The demo realtime-pipeline stack (Docker)."
    )
    stack_commands = parser.add_subparsers(dest="stack_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", default=os.environ.get("STACK_PROJECT", "realtime-pipeline"))
    common.add_argument("--flink-version", default=None, help="1.18 ... 2.3 or a full release; env FLINK_VERSION")
    common.add_argument("--rest-port", type=_port, default=_port(os.environ.get("FLINK_REST_PORT", "8081")))
    common.add_argument("--data-dir", default=os.environ.get("STACK_DATA_DIR", str(REPO_ROOT / "stack" / "data")))
    common.add_argument("--image", default=os.environ.get("FLINK_IMAGE"), help="use this image instead of building")
    common.add_argument(
        "--flink-properties",
        action="store_true",
        help="the variant configured through FLINK_PROPERTIES only (stack/flink-properties.yml, no config file)",
    )

    up = stack_commands.add_parser("up", parents=[common], help="build, start, submit the demo job")
    up.add_argument("--no-job", action="store_true", help="do not submit the demo job")
    up.set_defaults(run=stack_up)
    down = stack_commands.add_parser("down", parents=[common], help="remove the stack's containers")
    down.set_defaults(run=stack_down)
    fault = stack_commands.add_parser("fault", parents=[common], help="inject a failure")
    fault.add_argument("fault", choices=sorted(FAULTS))
    fault.set_defaults(run=stack_fault)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UnsupportedFlinkVersion as exc:
        print(f"demo stack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StackError, ImageBuildError, JobBuildError, WaitTimeout, docker.errors.DockerException) as exc:
        print(f"demo stack: {exc}", file=sys.stderr)
        return EXIT_FAILED
