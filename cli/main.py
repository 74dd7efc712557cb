"""flink-runbook command line.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or input. Known errors
are printed as one line naming what failed; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import docker.errors

from flink_runbook.audit.compose_file import ComposeFileError
from flink_runbook.audit.fixes import UnsafeFix
from flink_runbook.cli.console import audit_lines, diagnosis_lines, recovery_lines
from flink_runbook.flink.config_file import ConfigFileError
from flink_runbook.flink.options import UnknownFlinkRelease
from flink_runbook.flink.rest import FlinkRestError
from flink_runbook.infrastructure.temporary_server import TemporaryServerError, quiet_temporary_server
from flink_runbook.inventory import InventoryError, inventory_schema, load_inventory
from flink_runbook.polling import WaitTimeout
from flink_runbook.runbook.deciding.approval import ApprovalMode
from flink_runbook.runbook.keeping.host_state import StateDirError, check_state_dir

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2



class UsageError(Exception):
    pass


def say_inventory_warnings(args: argparse.Namespace) -> None:
    """What the inventory allows but deserves a second look, on stderr before the command runs (a bad
    inventory raises here, as in the command)."""
    if getattr(args, "config", None):
        for warning in load_inventory(args.config).warnings:
            print(f"flink-runbook: warning: {warning}", file=sys.stderr)


def _load_selection(args: argparse.Namespace) -> None:
    """Validate the inventory before anything runs: bad input changes nothing and exits 2."""
    load_inventory(args.config).select(args.cluster)


def inventory_schema_cmd(args: argparse.Namespace) -> int:
    print(inventory_schema())
    return EXIT_OK


def inventory_reference_cmd(args: argparse.Namespace) -> int:
    from flink_runbook.inventory.reference import inventory_reference

    print(inventory_reference(), end="")
    return EXIT_OK


def inventory_check(args: argparse.Namespace) -> int:
    """The file is read and checked (its warnings said before this runs); nothing is asked of a cluster."""
    clusters = load_inventory(args.config).clusters
    print(f"{args.config}: valid, {len(clusters)} cluster{'s' if len(clusters) != 1 else ''}: "
          f"{', '.join(c.name for c in clusters)}")
    return EXIT_OK


def print_results(results: list[dict], as_json: bool, lines: Callable[[dict], list[str]]) -> None:
    """One JSON list, or each cluster's result as lines for a terminal."""
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print("\n".join(lines(result)))


def diagnose(args: argparse.Namespace) -> int:
    _load_selection(args)
    quiet_temporary_server()
    from flink_runbook.flows.diagnose import diagnose_flow  # Prefect is imported only when a flow runs

    results = diagnose_flow(config=str(args.config), cluster=args.cluster)
    print_results(results, args.json, diagnosis_lines)
    return EXIT_OK if all(r["healthy"] for r in results) else EXIT_FAILED


def recover(args: argparse.Namespace) -> int:
    clusters = load_inventory(args.config).to_act_on(args.cluster, args.all)
    if not args.dry_run:  # no lock without the host's state dir: refused before Prefect starts (StateDirError)
        for cluster in clusters:
            check_state_dir(cluster.state_dir, cluster.name, Path(args.config))
    quiet_temporary_server()
    from flink_runbook.flows.recover_run import run_recover

    # A step that needs a human: --yes approves; a terminal asks; anything else is refused, not attempted.
    terminal = sys.stdin.isatty() and sys.stderr.isatty()
    mode = ApprovalMode.YES if args.yes else (ApprovalMode.PROMPT if terminal else ApprovalMode.REFUSE)
    try:
        results = run_recover(
            config=str(args.config), cluster=args.cluster, dry_run=args.dry_run, all_clusters=args.all,
            approval_mode=mode,
        )
    except Exception as exc:  # the run failed for another reason than its verdict: say which
        print(f"flink-runbook: the recover run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print_results([r.to_dict() for r in results], args.json, recovery_lines)  # the JSON edge
    ok = all(r.status.ok for r in results)
    return EXIT_OK if ok else EXIT_FAILED


def status(args: argparse.Namespace) -> int:
    if args.watch is not None and args.watch < 1:
        raise UsageError(f"--watch must be at least 1 second, not {args.watch}")
    _load_selection(args)
    from flink_runbook.cli.status import show_status

    return show_status(str(args.config), args.cluster, args.json, args.watch)


def monitor_check(args: argparse.Namespace) -> int:
    _load_selection(args)
    quiet_temporary_server()
    from flink_runbook.flows.monitor import monitor_flow

    state = monitor_flow(config=str(args.config), return_state=True)
    if state.is_failed():
        print(f"flink-runbook: {state.message}", file=sys.stderr)
        return EXIT_FAILED
    results = state.result()
    for result in results:
        print(
            f"{result['cluster']}: {'healthy' if result['healthy'] else 'UNHEALTHY'}; "
            f"{result['decision']}: {result['reason']} (events: {', '.join(result['events'])})"
        )
    return EXIT_OK if all(r["healthy"] for r in results) else EXIT_FAILED


def monitor_reset(args: argparse.Namespace) -> int:
    (cluster,) = load_inventory(args.config).select(args.cluster)
    quiet_temporary_server()
    from flink_runbook.tasks.monitor_steps import reset_escalation

    was = reset_escalation(cluster, by=os.environ.get("USER", "the CLI"))
    print(f"{cluster.name}: " + ("escalation reset; the monitor acts on it again" if was else "was not escalated"))
    return EXIT_OK


def stopped_list(args: argparse.Namespace) -> int:
    """The jobs people stopped on purpose that the runbook leaves alone, per cluster (from the state dir)."""
    from flink_runbook.runbook.keeping.person_stops import read_stops

    for cluster in load_inventory(args.config).select(args.cluster):
        try:
            stops = read_stops(cluster.state_dir, cluster.name)
        except OSError as exc:
            raise UsageError(f"cluster {cluster.name}: cannot read its stops in {cluster.state_dir}: {exc}") from None
        if not stops:
            print(f"{cluster.name}: no job stopped by a person")
        for stop in stops.values():
            print(f"{cluster.name}: {stop.describe()}")
    return EXIT_OK


def stopped_release(args: argparse.Namespace) -> int:
    """An operator lets the runbook bring a job a person stopped back (from its savepoint when it has one)."""
    (cluster,) = load_inventory(args.config).select(args.cluster)
    if args.job not in cluster.jobs_by_name:
        raise UsageError(f"{args.config}: cluster {cluster.name} has no job named {args.job!r}")
    from flink_runbook.runbook.keeping.person_stops import release_stop

    try:
        released = release_stop(cluster.state_dir, cluster.name, args.job, by=os.environ.get("USER") or "the CLI")
    except OSError as exc:
        raise UsageError(f"cluster {cluster.name}: cannot write its stops in {cluster.state_dir}: {exc}") from None
    if released is None:
        print(f"{cluster.name}: job {args.job} has no stop by a person to release")
        return EXIT_OK
    origin = f"from its savepoint {released.savepoint}" if released.savepoint else "from its latest retained checkpoint"
    print(f"{cluster.name}: released {released.describe()}; the next recover resubmits it {origin}")
    return EXIT_OK


def monitor_health(args: argparse.Namespace) -> int:
    """For a supervisor: exit 0 while monitor ticks complete, 1 when they stall or Prefect cannot be asked."""
    if args.stalled_after < 1:
        raise UsageError(f"--stalled-after must be at least 1 interval, not {args.stalled_after}")
    if not os.environ.get("PREFECT_API_URL"):
        raise UsageError("monitor health asks the Prefect server the monitor runs on: set PREFECT_API_URL")
    from prefect.exceptions import ObjectNotFound

    from flink_runbook.serving.watchdog import read_monitor_health

    try:
        health = read_monitor_health(args.deployment, args.stalled_after)
    except ObjectNotFound:
        print(f"flink-runbook: no deployment {args.deployment} on {os.environ['PREFECT_API_URL']}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # unreachable server, bad answer: the supervisor must hear "not healthy"
        print(f"flink-runbook: cannot ask {os.environ['PREFECT_API_URL']} about the monitor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(health.summary)
    return EXIT_FAILED if health.stalled else EXIT_OK


def audit(args: argparse.Namespace) -> int:
    from flink_runbook.audit.sources import check_audit_inputs
    from flink_runbook.tasks.clients import cluster_rest

    # Every input is read and checked before the flow runs: a bad file or key exits 2 and changes nothing.
    # A cluster with no files named is audited from the running JobManager; the report says what was not read.
    for cluster in load_inventory(args.config).select(args.cluster):
        check_audit_inputs(cluster, cluster_rest(cluster))
    quiet_temporary_server()
    from flink_runbook.flows.audit import audit_flow

    results = audit_flow(config=str(args.config), cluster=args.cluster, fix=args.fix)
    print_results(results, args.json, audit_lines)
    attention = [f for r in results for f in r["findings"] if f["severity"] in ("warning", "error")]
    return EXIT_FAILED if attention else EXIT_OK


def package_version() -> str:
    try:
        return version("flink-runbook")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def init(args: argparse.Namespace) -> int:
    """A starting inventory from a running cluster; never overwrites a file; says what it could not find out."""
    from flink_runbook.cli.init import find_cluster, rest_url_problem
    from flink_runbook.inventory.model import NAME_PATTERN
    from flink_runbook.inventory.starting import starting_inventory

    if problem := rest_url_problem(args.rest):
        raise UsageError(problem)
    if args.cluster is not None and not NAME_PATTERN.match(args.cluster):
        raise UsageError(f"--cluster {args.cluster!r} must be lowercase letters, digits and dashes (at most 63)")
    output: Path = args.output
    if output.exists():
        raise UsageError(f"{output} exists; init never overwrites a file: give --output another path")
    if not output.parent.is_dir():
        raise UsageError(f"{output}: its directory {output.parent} does not exist")
    found = find_cluster(args.rest, args.cluster, output.parent)
    written = starting_inventory(found, f"flink-runbook init --rest {found.rest_url}")
    try:
        with output.open("x") as file:  # "x": not even a file made meanwhile is overwritten
            file.write(written.text)
    except FileExistsError:
        raise UsageError(f"{output} exists; init never overwrites a file: give --output another path") from None
    try:
        load_inventory(output)
    except InventoryError as exc:  # init's own fault: nothing half-right is left behind
        output.unlink()
        print(f"flink-runbook: init wrote an inventory its own check refuses (a bug); removed it: {exc}",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"{output}: cluster {found.name}, {len(found.jobs)} job{'s' if len(found.jobs) != 1 else ''} running now; "
          f"valid (flink-runbook inventory check --config {output})")
    if written.open_points:
        print("Not found out, or guessed: settle these in the file (its DECIDE, GUESSED and NOT FOUND lines):")
        print("\n".join(f"  - {point}" for point in written.open_points))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flink-runbook", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"flink-runbook {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    inventory_options = argparse.ArgumentParser(add_help=False)
    inventory_options.add_argument("--config", required=True, help="inventory YAML file")
    inventory_options.add_argument("--cluster", help="only this cluster of the inventory")
    inventory_options.add_argument("--json", action="store_true", help="one JSON object per cluster, in a list")

    def inventory_command(name: str, run, help: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, parents=[inventory_options], help=help)
        command.set_defaults(run=run)
        return command

    inventory_command(
        "diagnose", diagnose, "the runbook's checks (read-only); exit 0 healthy, 1 unhealthy, 2 bad input"
    )
    recover_cmd = inventory_command(
        "recover", recover, "restart TaskManagers, resubmit jobs from their checkpoint, verify; exit 0 ok, 1 failed"
    )
    recover_cmd.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    recover_cmd.add_argument("--all", action="store_true", help="every cluster of the inventory (else --cluster NAME)")
    recover_cmd.add_argument(
        "--yes", action="store_true", help="approve risky steps (else asked on a terminal, refused without one)"
    )
    status_cmd = inventory_command("status", status, "every cluster on one screen: health, jobs, guard, last incident")
    status_cmd.add_argument("--watch", type=float, nargs="?", const=5.0, default=None, metavar="SECONDS",
                            help="refresh every SECONDS (default 5) until Ctrl-C")

    monitor_cmd = commands.add_parser(
        "monitor", help="one monitor tick, reset a cluster's escalation, or whether the served monitor still ticks"
    )
    monitor_commands = monitor_cmd.add_subparsers(dest="monitor_command", required=True)
    check = monitor_commands.add_parser(
        "check", help="check every cluster, emit events (a deployment trigger may start recover); exit 1 unhealthy"
    )
    check.add_argument("--config", required=True, help="inventory YAML file")
    check.set_defaults(run=monitor_check, cluster=None)
    reset = monitor_commands.add_parser("reset", help="let the monitor act on an escalated cluster again")
    reset.add_argument("--config", required=True, help="inventory YAML file")
    reset.add_argument("--cluster", required=True, help="the escalated cluster")
    reset.set_defaults(run=monitor_reset)
    health = monitor_commands.add_parser(
        "health", help="for supervisors: exit 0 while monitor ticks complete, 1 when they have stalled"
    )
    health.add_argument("--deployment", default="monitor/monitor", help="flow/deployment (default monitor/monitor)")
    health.add_argument("--stalled-after", type=int, default=3, help="intervals without a completed tick (default 3)")
    health.set_defaults(run=monitor_health)

    inventory_cmd = commands.add_parser("inventory", help="the inventory file: its JSON Schema, its reference, or "
                                        "check one")
    inventory_commands = inventory_cmd.add_subparsers(dest="inventory_command", required=True)
    schema = inventory_commands.add_parser("schema", help="print the inventory's JSON Schema (for editors)")
    schema.set_defaults(run=inventory_schema_cmd)
    reference = inventory_commands.add_parser("reference", help="print every key with its type, default and meaning "
                                              "(Markdown: docs/inventory.md)")
    reference.set_defaults(run=inventory_reference_cmd)
    checked = inventory_commands.add_parser("check", help="check an inventory file; exit 0 valid, 2 not")
    checked.add_argument("--config", required=True, help="inventory YAML file")
    checked.set_defaults(run=inventory_check)

    stopped_cmd = commands.add_parser(
        "stopped", help="jobs a person cancelled or stopped with a savepoint, which the runbook leaves alone"
    )
    stopped_commands = stopped_cmd.add_subparsers(dest="stopped_command", required=True)
    listed = stopped_commands.add_parser("list", help="the stops remembered per cluster")
    listed.add_argument("--config", required=True, help="inventory YAML file")
    listed.add_argument("--cluster", help="only this cluster of the inventory")
    listed.set_defaults(run=stopped_list)
    release = stopped_commands.add_parser(
        "release", help="let the next recover bring the job back (from its savepoint when it was stopped with one)"
    )
    release.add_argument("--config", required=True, help="inventory YAML file")
    release.add_argument("--cluster", required=True, help="the job's cluster")
    release.add_argument("--job", required=True, help="the job's name in the inventory")
    release.set_defaults(run=stopped_release)

    init_cmd = commands.add_parser(
        "init", help="write a starting inventory from a running cluster's REST API and its Docker containers"
    )
    init_cmd.add_argument("--rest", required=True, metavar="URL", help="the JobManager's REST API (http://HOST:8081)")
    init_cmd.add_argument("--output", type=Path, default=Path("inventory.yaml"),
                          help="the file to write (default ./inventory.yaml); an existing file is never overwritten")
    init_cmd.add_argument("--cluster", metavar="NAME", help="the cluster's name (default: its compose project)")
    init_cmd.set_defaults(run=init)

    commands.add_parser(
        "serve", add_help=False,
        help="serve every deployment with the fault watcher, on a local Prefect server or --api URL's "
        "(options: serve --help)",
    )
    audit_cmd = inventory_command(
        "audit", audit, "config files and live settings against the runbook; exit 0 clean, 1 warnings, 2 bad input"
    )
    audit_cmd.add_argument("--fix", action="store_true", help="apply the safe fixes (backup first), then audit again")

    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the serving process has its own options (flink-runbook serve --help)
        from flink_runbook.serving.serve import main as serve

        return serve(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        say_inventory_warnings(args)
        return args.run(args)
    except InventoryError as exc:
        for problem in exc.problems:  # every problem of the file, each on its own line
            print(f"flink-runbook: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (
        UsageError,
        StateDirError,
        ConfigFileError,
        ComposeFileError,
        UnknownFlinkRelease,
    ) as exc:
        print(f"flink-runbook: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FlinkRestError, WaitTimeout, UnsafeFix, TemporaryServerError) as exc:
        print(f"flink-runbook: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except docker.errors.DockerException as exc:
        print(f"flink-runbook: Docker: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
