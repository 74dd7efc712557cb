"""flink-runbook against what a user would otherwise run: the same stack, job and faults, side by side.

    .venv/bin/python benchmarks/versus.py [--reps 3] [--cap 300] [--arms abcdef] [--faults pause,crash,partition]
    (make bench-versus)

Arms (Flink 1.20.3, the demo's exactly-once CSV job, 20 ids/s, a checkpoint every 2 s):
  a  Flink alone, the demo's configuration (heartbeat 5 s, 3 fixed-delay restarts 1 s apart)
  b  Flink alone, the runbook's advice (heartbeat.timeout 180000, 10 fixed-delay restarts 10 s apart)
  c  Flink alone, Flink's own defaults (heartbeat 50 s; no strategy set: exponential delay, no limit)
  d  the demo's configuration and the runbook's watchdog loop, ported as written (bugs included)
  e  the demo's configuration and flink-runbook served, monitor every 30 s, no fault watcher
  f  the demo's configuration and flink-runbook served with its defaults (fault watcher on)
All keep `restart: unless-stopped`. Faults, each on the TaskManager: pause (`docker pause`, a
stalled JVM), crash (`kill -9` of its JVM from the host: Docker sees a crash and its restart policy
applies), partition (`docker network disconnect`, reconnected after 60 s).

Per trial, from the fault: detect (a-c: Flink's first reaction, the job leaving RUNNING or the
TaskManager dropped; d: the watchdog's first restart; e, f: the first flink.cluster.unhealthy
event), recovered (the job RUNNING and new output committed), the longest gap in committed output,
ids lost and duplicated in the trial's own sink directory, and whether a human is needed (not
recovered within --cap seconds). A trial ends early once nothing in its arm can recover it any more:
the job FAILED or CANCELED in an arm that never resubmits (a-d; d gets one more watchdog round).
Arms a-d run side by side, each on its own stack (their times are Flink's timeouts and the
watchdog's sleeps, not CPU); e and f each run alone. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flink_runbook.demo.job import (  # noqa: E402
    DEMO_ENTRY_CLASS,
    build_demo_job_jar,
    committed_ids,
    demo_job_args,
    sink_integrity,
)
from flink_runbook.demo.stack import COMPOSE_FILE, DemoStack, StackSettings, compose_command, drill_inventory  # noqa: E402
from flink_runbook.demo.versions import DEFAULT_FLINK_VERSION  # noqa: E402
from flink_runbook.flink.rest import FlinkRestError  # noqa: E402
from flink_runbook.infrastructure.local_server import TELEMETRY_OFF, start_local_server  # noqa: E402
from flink_runbook.polling import wait_until  # noqa: E402

VERSION = DEFAULT_FLINK_VERSION
STACK_CONF = COMPOSE_FILE.parent / "docker" / "{role}" / "flink-conf.yaml"
ARM_TITLES = {
    "a": "Flink alone, demo config",
    "b": "Flink alone, runbook's advice",
    "c": "Flink alone, Flink defaults",
    "d": "runbook watchdog loop",
    "e": "flink-runbook, monitor only",
    "f": "flink-runbook + watcher",
}
PARTITION_S = 60.0
SAMPLE_S = 0.5

# The runbook's monitor-taskmanager.sh as written (URL and compose command are this stack's).
WATCHDOG = r"""
while true; do
    TM_COUNT=$(curl -s $FLINK_URL/taskmanagers | python3 -c "import sys, json; print(len(json.load(sys.stdin).get('taskmanagers', [])))")

    if [ "$TM_COUNT" -eq "0" ]; then
        echo "$(date): ❌ TaskManager 离线，重启中..."
        $COMPOSE restart taskmanager
        sleep 30
    else
        echo "$(date): ✅ TaskManager 在线 ($TM_COUNT 个)"
    fi

    sleep 60
done
"""  # noqa: E501


def arm_config(role: str, arm: str) -> str:
    """The role's flink-conf.yaml for the arm: the demo's, with the arm's failure settings."""
    lines = Path(str(STACK_CONF).format(role=role)).read_text()
    failure_keys = ("heartbeat.", "restart-strategy", "slot.request.timeout")
    kept = [line for line in lines.splitlines() if not line.startswith(failure_keys)]
    if arm == "b":
        kept += [
            "heartbeat.timeout: 180000",
            "heartbeat.interval: 10000",
            "restart-strategy.type: fixed-delay",
            "restart-strategy.fixed-delay.attempts: 10",
            "restart-strategy.fixed-delay.delay: 10 s",
            "slot.request.timeout: 10000",
        ]
    elif arm == "c":
        pass  # Flink's defaults: heartbeat 50 s / 10 s, exponential-delay restarts without limit, slots 5 min
    else:
        return lines
    return "\n".join(kept) + "\n"


def compose_override(work: Path, arm: str) -> Path | None:
    if arm not in ("b", "c"):
        return None
    volumes = {}
    for role in ("jobmanager", "taskmanager"):
        path = work / f"{role}-flink-conf.yaml"
        path.write_text(arm_config(role, arm))
        volumes[role] = {"volumes": [f"{path}:/opt/flink/conf-mounted/flink-conf.yaml:ro"]}
    override = work / "override.yml"
    override.write_text(yaml.safe_dump({"services": volumes}))
    return override


@dataclass
class Trial:
    arm: str
    fault: str
    rep: int
    detect_s: float | None = None
    recovered_s: float | None = None
    gap_s: float | None = None
    lost: int = 0
    duplicated: int = 0
    ids: int = 0
    ended: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def human_needed(self) -> bool:
        return self.recovered_s is None


class ArmStack:
    """One stack with one arm's configuration and helper (watchdog or served flink-runbook)."""

    def __init__(self, arm: str, work: Path, port: int, jar: Path, label: str = "") -> None:
        self.arm, self.work, self.jar = arm, work, jar
        work.mkdir(parents=True, exist_ok=True)
        self.project = f"vs{arm}{label}{os.getpid() % 1000}"
        self.stack = DemoStack(
            StackSettings(
                data_dir=work / "data",
                project=self.project,
                flink_version=VERSION,
                rest_port=port,
                compose_override=compose_override(work, arm),
            )
        )
        self.watchdog: subprocess.Popen | None = None
        self.watchdog_lines: list[tuple[float, str]] = []
        self.served = None
        self.trial_output = ""

    @property
    def rest(self):
        return self.stack.rest

    def network(self) -> str:
        return f"{self.project}_default"

    def up(self) -> None:
        self.stack.up(ready_timeout=300)
        if self.arm == "d":
            self.start_watchdog()

    def start_watchdog(self) -> None:
        files = [
            COMPOSE_FILE,
            *([self.stack.settings.compose_override] if self.stack.settings.compose_override else []),
        ]
        compose = " ".join([*compose_command(), "--project-name", self.project, *(f"--file={f}" for f in files)])
        from flink_runbook.demo.stack import compose_variables

        env = {**os.environ, **compose_variables(self.stack.settings, f"flink-runbook/flink:{VERSION}")}
        env.update(FLINK_URL=self.stack.settings.rest_url, COMPOSE=compose)
        self.watchdog = subprocess.Popen(
            ["bash", "-c", WATCHDOG], env=env, cwd=COMPOSE_FILE.parent, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )

        def read() -> None:
            for line in self.watchdog.stdout:
                self.watchdog_lines.append((time.time(), line.rstrip()))

        threading.Thread(target=read, daemon=True).start()

    def down(self) -> None:
        if self.watchdog and self.watchdog.poll() is None:
            os.killpg(self.watchdog.pid, 15)
        self.stack.down()

    # -- one trial's job -----------------------------------------------------

    def job_args(self, trial: str) -> list[str]:
        return demo_job_args(output=f"/data/output/{trial}")

    def start_job(self, trial: str) -> str:
        self.trial_output = trial
        jar_id = self.rest.upload_jar(self.jar)
        job_id = self.rest.run_jar(
            jar_id, entry_class=DEMO_ENTRY_CLASS, program_args=self.job_args(trial), parallelism=1
        )
        wait_until(lambda: self.rest.job(job_id).state, lambda s: s == "RUNNING", timeout=120, what="job RUNNING")
        wait_until(self.commits, lambda c: c[0] >= 2, timeout=60, what="first committed output", interval=0.5)
        return job_id

    def output_dir(self) -> Path:
        return self.stack.output_dir / self.trial_output

    def commits(self) -> tuple[int, int]:
        """(committed part files, their bytes) of the trial's sink: it grows with each completed checkpoint."""
        files = [p for p in self.output_dir().rglob("ids-*.csv") if not p.name.startswith(".")]
        return len(files), sum(p.stat().st_size for p in files)

    def job_state(self) -> str:
        try:
            jobs = [j for j in self.rest.jobs_overview() if j.name == "realtime-cdc-demo"]
        except FlinkRestError:
            return "UNREACHABLE"
        if not jobs:
            return "MISSING"
        live = [j for j in jobs if j.live]
        return max(live or jobs, key=lambda j: j.start_time_ms).state

    def taskmanagers(self) -> int:
        try:
            return len(self.rest.taskmanagers())
        except FlinkRestError:
            return -1

    def reset(self) -> None:
        """Undo what a trial left: thaw, reconnect, cancel every job, wait for a TaskManager with free slots."""
        tm = self.stack.taskmanager()
        tm.reload()
        if tm.status == "paused":
            tm.unpause()
        tm.reload()
        if self.network() not in tm.attrs["NetworkSettings"]["Networks"]:
            self.stack.client.networks.get(self.network()).connect(tm, aliases=["taskmanager"])
            tm.restart(timeout=5)
        if tm.status != "running":
            tm.start()
        for job in self.rest.jobs_overview():
            if job.live:
                self.rest.session.patch(self.rest.url(f"jobs/{job.id}?mode=cancel"), timeout=10)
        wait_until(
            lambda: [j for j in self.rest.jobs_overview() if j.live],
            lambda live: not live,
            timeout=60,
            what="no live job",
            tolerate=(FlinkRestError,),
        )
        self.stack.wait_until_ready(timeout=180)
        wait_until(
            self.rest.cluster_overview, lambda o: o.slots_available >= 2, timeout=120, what="free slots",
            tolerate=(FlinkRestError,),
        )


def inject(arm_stack: ArmStack, fault: str) -> threading.Timer | None:
    tm = arm_stack.stack.taskmanager()
    tm.reload()
    if fault == "pause":
        tm.pause()
    elif fault == "crash":
        subprocess.run(["kill", "-9", str(tm.attrs["State"]["Pid"])], check=True)
    elif fault == "partition":
        network = arm_stack.stack.client.networks.get(arm_stack.network())
        network.disconnect(tm)

        def reconnect() -> None:
            tm.reload()
            if arm_stack.network() not in tm.attrs["NetworkSettings"]["Networks"]:
                network.connect(tm, aliases=["taskmanager"])

        timer = threading.Timer(PARTITION_S, reconnect)
        timer.start()
        return timer
    return None


def unhealthy_events_since(cluster: str, since: datetime) -> list:
    from flink_runbook.demo.drill import cluster_events

    return cluster_events(cluster, ["flink.cluster.unhealthy"], since)


def run_trial(arm_stack: ArmStack, fault: str, rep: int, cap_s: float, say) -> Trial:
    arm = arm_stack.arm
    trial = Trial(arm, fault, rep)
    name = f"{arm}-{fault}-{rep}"
    arm_stack.start_job(name)
    if arm in ("e", "f"):
        arm_stack.write_inventory(name)  # type: ignore[attr-defined]
    commit_times: list[float] = []
    last = arm_stack.commits()
    settle_until = time.time() + 3
    while time.time() < settle_until:  # the commits before the fault start the gap measurement
        commits = arm_stack.commits()
        if commits != last:
            commit_times.append(time.time())
            last = commits
        time.sleep(SAMPLE_S)
    last_commit_before = commit_times[-1] if commit_times else time.time()
    commit_times = []
    injected_wall = datetime.now(UTC)
    t0 = time.time()
    timer = inject(arm_stack, fault)
    failed_at = None
    watchdog_seen = len(arm_stack.watchdog_lines)
    while True:
        now = time.time()
        elapsed = now - t0
        state = arm_stack.job_state()
        commits = arm_stack.commits()
        if commits != last:
            commit_times.append(now)
            last = commits
        if trial.detect_s is None:
            if arm in ("a", "b", "c") and (state != "RUNNING" or arm_stack.taskmanagers() == 0):
                trial.detect_s = elapsed
            elif arm == "d":
                acted = [t for t, line in arm_stack.watchdog_lines[watchdog_seen:] if "离线" in line]
                if acted:
                    trial.detect_s = acted[0] - t0
        if state == "RUNNING" and commit_times and commit_times[-1] > t0 + 1.0 and trial.recovered_s is None:
            # Output committed after the fault while the job runs: recovered (or it never stopped).
            trial.recovered_s = commit_times[-1] - t0
        if trial.recovered_s is not None and now - t0 >= trial.recovered_s + 4:
            trial.ended = "recovered"
            break
        if state in ("FAILED", "CANCELED") and arm in ("a", "b", "c", "d"):
            failed_at = failed_at or now
            # Nothing in these arms resubmits a job; the watchdog gets one more round to show what it does.
            if (arm != "d" or now - failed_at > 95) and (fault != "partition" or elapsed > PARTITION_S + 5):
                trial.ended = f"job {state}, nothing in this arm resubmits it"
                break
        if elapsed > cap_s:
            trial.ended = f"not recovered within {cap_s:.0f}s"
            break
        time.sleep(SAMPLE_S)
    if trial.detect_s is None and arm in ("e", "f"):
        events = unhealthy_events_since(arm_stack.project, injected_wall)
        if events:
            trial.detect_s = (events[0].occurred - injected_wall).total_seconds()
    if timer:
        timer.join()
    if arm in ("e", "f"):
        arm_stack.wait_for_recoveries(injected_wall)  # type: ignore[attr-defined]
    time.sleep(4)  # the last checkpoint's commit
    ends = [last_commit_before, *commit_times]
    # A trial never recovered has an open gap: no number, "human needed" says it.
    gaps = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    trial.gap_s = max(gaps) if gaps and trial.recovered_s is not None else None
    ids = committed_ids(arm_stack.output_dir())
    trial.ids = len(ids)
    trial.duplicated, trial.lost = sink_integrity(ids)
    say(
        f"  {name}: detect {fmt(trial.detect_s)}, recovered {fmt(trial.recovered_s)}, gap {fmt(trial.gap_s)}, "
        f"{trial.ids} ids, {trial.lost} lost, {trial.duplicated} duplicated; {trial.ended}"
    )
    arm_stack.reset()
    return trial


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


class ServedArmStack(ArmStack):
    def __init__(self, *args, server=None, watch: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.server, self.watch = server, watch
        self.inventory = self.work / "inventory.yaml"

    def write_inventory(self, trial: str) -> None:
        data = drill_inventory(self.stack.settings, self.jar, self.work / "state", self.job_args(trial))
        self.inventory.write_text(yaml.safe_dump(data))

    def up(self) -> None:
        from flink_runbook.demo.drill import ServedDeployments

        super().up()
        self.write_inventory("warm-up")
        self.served = ServedDeployments.start(
            self.inventory, self.server.api_url, self.work / "serve.log", 30, prefect_home=self.server.home,
            watch=self.watch,
        )
        self.served.wait_until_serving()

    def wait_for_recoveries(self, since: datetime) -> None:
        from flink_runbook.demo.drill import FINAL_STATES, recover_runs

        wait_until(
            lambda: recover_runs(self.project, since),
            lambda runs: all(r.state_type and r.state_type.value in FINAL_STATES for r in runs),
            timeout=300,
            interval=1,
            what="recover runs of the trial to end",
        )

    def down(self) -> None:
        if self.served:
            self.served.stop()
        super().down()


def run_arm(arm_stack: ArmStack, faults: list[str], reps: int, cap_s: float, results: list[Trial], say) -> None:
    try:
        arm_stack.up()
        for fault in faults:
            for rep in range(1, reps + 1):
                try:
                    results.append(run_trial(arm_stack, fault, rep, cap_s, say))
                except Exception as exc:  # one broken trial is a line of the report, not the end of the run
                    say(f"  {arm_stack.arm}-{fault}-{rep}: the trial broke: {type(exc).__name__}: {exc}")
                    trial = Trial(arm_stack.arm, fault, rep, ended=f"broke: {exc}")
                    results.append(trial)
                    try:
                        arm_stack.reset()
                    except Exception as reset_exc:
                        say(f"  {arm_stack.arm}: reset failed too ({reset_exc}); arm abandoned")
                        return
    finally:
        arm_stack.down()


def stats(values: list[float | None]) -> str:
    real = [v for v in values if v is not None]
    if not real:
        return "-"
    return f"{statistics.median(real):.1f} [{min(real):.1f}-{max(real):.1f}]" + (
        f" ({len(values) - len(real)}x none)" if len(real) < len(values) else ""
    )


def print_table(results: list[Trial], arms: str, faults: list[str]) -> None:
    print("\n('-': never happened: not detected by that arm, never recovered, so no gap closes)")
    print("arm | fault | detect s median [min-max] | RUNNING + output again s | longest output gap s | "
          "ids lost / duplicated | human needed")
    print("---|---|---|---|---|---|---")
    medians: dict[tuple[str, str], float | None] = {}
    for arm in arms:
        for fault in faults:
            trials = [t for t in results if t.arm == arm and t.fault == fault]
            if not trials:
                continue
            recovered = [t.recovered_s for t in trials]
            real = [r for r in recovered if r is not None]
            medians[(arm, fault)] = statistics.median(real) if len(real) == len(recovered) else None
            print(
                f"{arm} {ARM_TITLES[arm]} | {fault} | {stats([t.detect_s for t in trials])} | {stats(recovered)} | "
                f"{stats([t.gap_s for t in trials])} | {sum(t.lost for t in trials)} / "
                f"{sum(t.duplicated for t in trials)} | {sum(t.human_needed for t in trials)} of {len(trials)}"
            )
    if "f" in arms:
        print("\nratio of each arm's median time to RUNNING + output again to f's (not recovered: inf)")
        for arm in arms:
            cells = []
            for fault in faults:
                mine, best = medians.get((arm, fault)), medians.get(("f", fault))
                cells.append(f"{fault} {'inf' if mine is None else (f'{mine / best:.1f}x' if best else '-')}")
            print(f"  {arm} {ARM_TITLES[arm]}: {', '.join(cells)}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cap", type=float, default=300.0, help="seconds after which a trial is 'human needed'")
    parser.add_argument("--arms", default="abcdef")
    parser.add_argument("--faults", default="pause,crash,partition")
    args = parser.parse_args()
    faults = args.faults.split(",")
    os.environ.update(TELEMETRY_OFF)
    work = Path(tempfile.mkdtemp(prefix="bench-versus-"))
    jar = build_demo_job_jar(VERSION)
    results: list[Trial] = []
    lock = threading.Lock()
    started = time.monotonic()

    def say(line: str) -> None:
        with lock:
            print(f"{time.monotonic() - started:7.0f}s {line}", flush=True)

    print(f"Flink {VERSION}, {args.reps} repetitions, faults {faults}, cap {args.cap:.0f}s; work dir {work}")
    passive = [a for a in args.arms if a in "abcd"]
    port = 18700
    threads = []
    for arm in passive:
        # An idle trial (b and c never undo a pause) runs on a stack of its own beside the others.
        groups = [["pause"], [f for f in faults if f != "pause"]] if arm in "bc" and "pause" in faults else [faults]
        for index, group in enumerate(g for g in groups if g):
            port += 1
            stack = ArmStack(arm, work / f"{arm}{index}", port, jar, label=str(index))
            thread = threading.Thread(target=run_arm, args=(stack, group, args.reps, args.cap, results, say))
            thread.start()
            threads.append(thread)
    if threads:
        say(f"arms {''.join(passive)} side by side on {len(threads)} stacks")
    for thread in threads:
        thread.join()
    served = [a for a in args.arms if a in "ef"]
    if served:
        server = start_local_server(work / "prefect-home", port=4295)
        os.environ["PREFECT_API_URL"] = server.api_url
        try:
            for arm in served:
                say(f"arm {arm} alone")
                port += 1
                stack = ServedArmStack(arm, work / arm, port, jar, server=server, watch=arm == "f")
                run_arm(stack, faults, args.reps, args.cap, results, say)
        finally:
            server.stop()
    say("done")
    print_table(results, args.arms, faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
