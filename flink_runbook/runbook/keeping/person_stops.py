"""Jobs a person stopped on purpose, remembered after Flink forgets them (a small JSON file per cluster).

A session JobManager drops CANCELED and FINISHED jobs from /jobs/overview after
`jobstore.expiration-time` (an hour by default), and all of them when it restarts
without HA; the job is then only "missing", which the runbook would resubmit. So
what the tool has seen (a job of the inventory CANCELED, or FINISHED by a
stop-with-savepoint) is kept here, beside the lineage in the host-wide state dir:
every door (CLI, monitor, watcher, worker) reads it under the same host lock the
recovery takes, with or without a Prefect server, and it outlives the server too.

A stop stands until the job is seen live again or an operator releases it
(`flink-runbook stopped release`): a released stop keeps its savepoint, so the
job comes back from that savepoint, not from an older checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

from flink_runbook.containers.docker_events import DockerEvent
from flink_runbook.containers.states import ContainerState, seconds_since
from flink_runbook.flink.answers import TERMINAL_JOB_STATES, JobInfo, JobState
from flink_runbook.inventory import ClusterSpec, JobSpec
from flink_runbook.runbook.deciding.restore_point import RestorePoint
from flink_runbook.runbook.keeping.state_files import open_no_follow, read_state_file

T = TypeVar("T")
UNREADABLE = "UNKNOWN"
SHARED_MODE = 0o660  # as the host lock: the umask decides what others get


@dataclass(frozen=True)
class PersonStop:
    """A job a person stopped: how (CANCELED, or FINISHED by a stop-with-savepoint), and whether an operator
    has released it since (then the runbook may bring it back, from `savepoint` when there is one)."""

    job: str
    job_id: str
    state: str  # CANCELED | FINISHED | UNKNOWN (the record could not be read: a stop may stand)
    seen_at: float
    savepoint: str | None = None  # the stop-with-savepoint's path, as the JobManager names it
    savepoint_id: int | None = None
    released_at: float | None = None
    released_by: str | None = None
    unknown_because: str | None = None  # UNREADABLE: why the record could not be read

    @property
    def stands(self) -> bool:
        return self.released_at is None

    def describe(self) -> str:
        if self.state == UNREADABLE:
            return f"job {self.job}: {self.unknown_because}; whether a person stopped it is not known, so it is left"
        how = "cancelled" if self.state == JobState.CANCELED else "stopped"
        if self.savepoint:
            how += f" with savepoint {self.savepoint}"
        try:
            seen = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(self.seen_at)))
        except (TypeError, ValueError, OverflowError):
            seen = "at an unknown time"
        text = f"job {self.job} ({self.job_id}) {how}, seen {seen}"
        if not self.stands:
            text += f"; released by {self.released_by or 'an operator'}"
        return text


def stopped_with_savepoint(info: JobInfo) -> bool:
    """FINISHED with a savepoint in its checkpoint history: `POST /jobs/:id/stop` (a bounded job that ran out
    of input also ends FINISHED, without one)."""
    savepoint = info.checkpoints.latest_savepoint
    return info.state == JobState.FINISHED and savepoint is not None and bool(savepoint.external_path)


def stop_seen(info: JobInfo | None, spec: JobSpec | None) -> PersonStop | None:
    """The person's stop this answer shows, if any (a cancel only when the inventory leaves cancels alone)."""
    if info is None:
        return None
    if info.state == JobState.CANCELED and (spec is None or spec.on_canceled == "leave"):
        # A cancel may have taken a savepoint first (savepoint + cancel-job): keep it when it is the newest.
        savepoint, completed = info.checkpoints.latest_savepoint, info.checkpoints.latest_completed
        if savepoint is None or not savepoint.external_path or (completed and completed.id > savepoint.id):
            return PersonStop(info.name, info.id, JobState.CANCELED, time.time())
        return PersonStop(info.name, info.id, JobState.CANCELED, time.time(), savepoint.external_path, savepoint.id)
    if stopped_with_savepoint(info):
        savepoint = info.checkpoints.latest_savepoint
        return PersonStop(
            info.name, info.id, JobState.FINISHED, time.time(), savepoint.external_path, savepoint.id
        )
    return None


def left_stopped(info: JobInfo | None, spec: JobSpec | None, remembered: PersonStop | None = None) -> bool:
    """A person's decision the runbook leaves as it is: the job is stopped (what Flink says now, or, once Flink
    has forgotten it, what this tool remembers) and no operator has released it since."""
    if info is not None and info.state not in TERMINAL_JOB_STATES:
        return False
    if remembered is not None and not remembered.stands and (info is None or info.id == remembered.job_id):
        return False  # released: the operator asked for it back
    if stop_seen(info, spec) is not None:
        return True
    return info is None and remembered is not None and remembered.stands


def next_stops(
    known: Mapping[str, PersonStop],
    seen: Iterable[tuple[str, JobInfo | None]],
    specs: Mapping[str, JobSpec],
    looked_at: float | None = None,
) -> dict[str, PersonStop]:
    """The record after one look at the jobs (name, what the JobManager said; None: it knows none of that name):
    a new stop is remembered, a job seen live again is forgotten, anything else is kept as it was. A look taken
    (`looked_at`) before a stop was recorded forgets nothing: it may predate the stop."""
    record = dict(known)
    for name, info in seen:
        if info is None:
            continue  # forgotten by Flink: exactly when the record is needed
        if info.state not in TERMINAL_JOB_STATES:
            earlier = record.get(name)
            if earlier is None or looked_at is None or looked_at >= earlier.seen_at:
                record.pop(name, None)
            continue
        stop = stop_seen(info, specs.get(name))
        earlier = record.get(name)
        if stop is not None and (earlier is None or earlier.job_id != info.id):
            record[name] = stop
    return record


def stops_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "stops" / f"{cluster}.json"


def _read_record(path: Path, entry: Callable[..., T]) -> dict[str, T]:
    """Name -> entry of a record file: no file is an empty record; an entry that does not read is passed over;
    a file that cannot be read (permissions, a link planted there) raises: it is not an empty record."""
    try:
        data = json.loads(read_state_file(path))
    except FileNotFoundError:
        return {}
    except ValueError:  # half-written by hand: what cannot be read is not a decision anyone made
        return {}
    if not isinstance(data, dict):
        return {}
    record = {}
    for name, fields in data.items():
        try:
            record[str(name)] = entry(**fields)
        except TypeError:
            continue
    return record


def read_stops(state_dir: Path, cluster: str) -> dict[str, PersonStop]:
    """Job name -> the person's stop remembered for it (OSError when the file exists but cannot be read)."""
    return _read_record(stops_file(state_dir, cluster), PersonStop)


def unreadable_stops(names: Iterable[str], why: str) -> dict[str, PersonStop]:
    """What stands in for a record that cannot be read: for each job, a stop that may stand (never resubmitted
    from a guess; the finding says why)."""
    return {name: PersonStop(name, "", UNREADABLE, time.time(), unknown_because=why) for name in names}


def _rewrite(path: Path, read: Callable[[], dict], change: Callable[[dict], dict]) -> dict:
    """Read, change and write a record under its lock (the monitor, diagnose and recover all write). Files are
    group-writable, like the host lock: a state dir shared by an operators' group works for all of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_no_follow(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, SHARED_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = read()
        after = change(before)
        if after != before:
            partial = path.with_suffix(".partial")
            with open(partial, "w", opener=lambda p, f: open_no_follow(p, f, SHARED_MODE)) as out:
                json.dump({k: asdict(v) for k, v in after.items()}, out, indent=1, sort_keys=True)
            os.replace(partial, path)
        return after
    finally:
        os.close(fd)


def remember_stops(
    state_dir: Path,
    cluster: str,
    seen: Iterable[tuple[str, JobInfo | None]],
    specs: Mapping[str, JobSpec],
    looked_at: float | None = None,
) -> dict[str, PersonStop]:
    seen = list(seen)
    path = stops_file(state_dir, cluster)
    change = lambda known: next_stops(known, seen, specs, looked_at)  # noqa: E731
    return _rewrite(path, lambda: read_stops(state_dir, cluster), change)


def forget_stop(state_dir: Path, cluster: str, job: str) -> None:
    """A released stop is used up once the job is resubmitted: a later recovery restores from the job's newer
    checkpoints, never from that old savepoint again."""
    _rewrite(stops_file(state_dir, cluster), lambda: read_stops(state_dir, cluster),
             lambda known: {k: v for k, v in known.items() if k != job})


def release_stop(state_dir: Path, cluster: str, job: str, by: str) -> PersonStop | None:
    """An operator lets the runbook bring the job back; returns the stop released (None: none stood)."""
    released: list[PersonStop] = []

    def release(known: dict[str, PersonStop]) -> dict[str, PersonStop]:
        stop = known.get(job)
        if stop is None or not stop.stands:
            return known
        released.append(replace(stop, released_at=time.time(), released_by=by))
        return {**known, job: released[-1]}

    _rewrite(stops_file(state_dir, cluster), lambda: read_stops(state_dir, cluster), release)
    return released[0] if released else None


def released_savepoint(stop: PersonStop | None) -> RestorePoint | None:
    """Where a released stop-with-savepoint comes back from: its own savepoint, not an older checkpoint."""
    if stop is None or stop.stands or not stop.savepoint:
        return None
    return RestorePoint(
        stop.savepoint, stop.savepoint_id or 0, "savepoint", f"the stop-with-savepoint of job {stop.job_id}"
    )


@dataclass(frozen=True)
class ContainerStop:
    """A TaskManager container a person stopped (`docker stop`), as first seen: Docker's event log forgets
    (it keeps a few hundred events), this record keeps it while the container stays exited from that stop."""

    container_id: str
    finished_at: str
    seen_at: float


@dataclass(frozen=True)
class OwnRestart:
    """When the runbook itself restarted a container (`docker restart` logs a stop as a person's would)."""

    at: float


OWN_RESTART_WINDOW_S = 600.0


def _runbooks_own(state: ContainerState, own: Mapping[str, OwnRestart], now: float) -> bool:
    """It exited within minutes after the runbook restarted it: the runbook's stop (a start that failed)."""
    restart = own.get(state.name)
    ago = seconds_since(state.finished_at, now)
    return restart is not None and ago is not None and 0 <= (now - ago) - restart.at <= OWN_RESTART_WINDOW_S


def next_container_stops(
    known: Mapping[str, ContainerStop],
    states: Iterable[ContainerState],
    own: Mapping[str, OwnRestart] | None = None,
    now: float | None = None,
) -> dict[str, ContainerStop]:
    """The record after one look at the containers: a stop the engine logged is remembered (unless it was the
    runbook's own restart); one still exited from that same stop is kept; a container started since (or exited
    again by itself) is forgotten."""
    record = {}
    now = time.time() if now is None else now
    for state in states:
        earlier = known.get(state.name)
        if state.stopped_by_hand and _runbooks_own(state, own or {}, now):
            continue
        if state.stopped_by_hand and state.container_id and state.finished_at:
            same = earlier is not None and (earlier.container_id, earlier.finished_at) == (
                state.container_id, state.finished_at
            )
            record[state.name] = earlier if same else ContainerStop(state.container_id, state.finished_at, time.time())
        elif earlier is not None and state.state == "exited" and (earlier.container_id, earlier.finished_at) == (
            state.container_id, state.finished_at
        ):
            record[state.name] = earlier
    return record


def container_stops_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "stops" / f"{cluster}.containers.json"


def read_container_stops(state_dir: Path, cluster: str) -> dict[str, ContainerStop]:
    return _read_record(container_stops_file(state_dir, cluster), ContainerStop)


def remember_container_stops(
    state_dir: Path, cluster: str, states: Iterable[ContainerState]
) -> tuple[ContainerState, ...]:
    """Remember the stops seen now and return the states with every remembered stop marked stopped_by_hand."""
    states = tuple(states)
    own = read_own_restarts(state_dir, cluster)
    record = _rewrite(
        container_stops_file(state_dir, cluster),
        lambda: read_container_stops(state_dir, cluster),
        lambda known: next_container_stops(known, states, own),
    )
    return tuple(replace(s, stopped_by_hand=s.name in record) if s.role == "taskmanager" else s for s in states)


def own_restarts_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "stops" / f"{cluster}.own-restarts.json"


def read_own_restarts(state_dir: Path, cluster: str) -> dict[str, OwnRestart]:
    return _read_record(own_restarts_file(state_dir, cluster), OwnRestart)


def remember_own_restarts(state_dir: Path, cluster: str, names: Iterable[str]) -> None:
    restarted = {name: OwnRestart(time.time()) for name in names}
    path = own_restarts_file(state_dir, cluster)
    _rewrite(path, lambda: read_own_restarts(state_dir, cluster), lambda known: {**known, **restarted})


def expected_taskmanagers(cluster: ClusterSpec) -> int:
    """The TaskManagers that should be registered: not those a person stopped (left stopped, remembered)."""
    if cluster.restart_stopped:
        return cluster.expected_taskmanagers
    try:
        held = len(read_container_stops(cluster.state_dir, cluster.name))
    except OSError:  # unknown: every TaskManager is expected (a wait too long, never a restart too many)
        held = 0
    return max(0, cluster.expected_taskmanagers - held)


def standing_stops(state_dir: Path, cluster: str) -> frozenset[str]:
    """The jobs whose stop by a person stands (none known when the record cannot be read: the recovery's own
    look says so and refuses to guess; a wait or a watch that counts every job is the safe side)."""
    try:
        return frozenset(name for name, stop in read_stops(state_dir, cluster).items() if stop.stands)
    except OSError:
        return frozenset()


# `docker stop` (and compose stop) first sends SIGTERM, logged as a `kill` event, then waits up to its timeout.
STOP_SIGNALS = frozenset({"15", "SIGTERM", "TERM"})
STOP_TIMEOUT_MAX_S = 120.0


def asks_to_stop(event: DockerEvent) -> bool:
    """A `kill` with SIGTERM: what `docker stop` sends first (a crash sends nothing; `docker kill`, SIGKILL)."""
    return event.kind == "container" and event.action == "kill" and event.labels.get("signal", "") in STOP_SIGNALS


def died_when_asked_to_stop(event: DockerEvent, asked_at: float | None) -> bool:
    """A `die` within the stop timeout after SIGTERM was asked: a person's stop, not a crash."""
    return event.action == "die" and asked_at is not None and 0 <= event.at - asked_at <= STOP_TIMEOUT_MAX_S


def persons_stop(event: DockerEvent, asked_at: float | None, role: str | None, restart_stopped: bool) -> bool:
    """A TaskManager that died when a person asked it to stop: their decision, left stopped (not a crash)."""
    return role == "taskmanager" and not restart_stopped and died_when_asked_to_stop(event, asked_at)
