"""Application mode: a JobManager that runs its one job itself (`standalone-job`) (pure).

Recorded on 1.20.3 and 2.2.0 (tests/fixtures/rest/flink-<release>/application-mode-*/): its live
configuration (GET /jobmanager/config) says `execution.target: embedded`, a session JobManager does not list
the key; GET /config says `web-submit: false` and GET /jars answers 404: nothing can be uploaded or run on it.
Its process ends with its job: a job that FAILED ends it with exit code 163 (ApplicationStatus.FAILED's 1443,
modulo 256), a job that FINISHED or was CANCELED (a person's cancel) with exit code 0; a `docker stop` while the
job runs leaves 143 (SIGTERM). Started again, it runs the job's main() again: from HA storage when high availability is
configured and the job had not ended, from a configured restore path, or else from scratch (every record of
its source again, into the same sink).
"""

from __future__ import annotations

from collections.abc import Mapping

from flink_runbook.containers.states import ContainerState
from flink_runbook.runbook.observing.high_availability import high_availability_type

EMBEDDED_TARGET = "embedded"  # execution.target of an application cluster (EmbeddedExecutor.NAME)
# What a JobManager container's command says when it runs an application (the image's entrypoint, or
# Flink's class run directly).
APPLICATION_COMMANDS = ("standalone-job", "StandaloneApplicationClusterEntryPoint")
APPLICATION_FAILED_EXIT_CODE = 1443 % 256  # the process exit code, as Docker keeps it
APPLICATION_ENDED_EXIT_CODE = 0  # ApplicationStatus.SUCCEEDED and CANCELED: the job finished, or a person cancelled it
# Where a restore path is set: the option (its 1.x name second), or standalone-job's flags.
RESTORE_PATH_KEYS = ("execution.state-recovery.path", "execution.savepoint.path")
RESTORE_PATH_FLAGS = ("--fromSavepoint", "-s")

HA_TO_CONFIGURE = (
    "configure high availability (FLINK_PROPERTIES of both services, or the config file: "
    "high-availability.type: zookeeper, high-availability.zookeeper.quorum, high-availability.storageDir on "
    "storage both keep; stack/high-availability.yml shows them), so that a started JobManager restores its "
    "job from its latest checkpoint"
)


def runs_in_application_mode(config: Mapping[str, str]) -> bool:
    """The JobManager's live configuration (GET /jobmanager/config) is an application cluster's."""
    return str(config.get("execution.target", "")).strip().lower() == EMBEDDED_TARGET


def application_container(container: ContainerState) -> bool:
    """A JobManager container whose command runs an application (known while it is stopped, too)."""
    return any(word in part for part in container.command for word in APPLICATION_COMMANDS)


def properties_of(container: ContainerState) -> dict[str, str]:
    """The options its FLINK_PROPERTIES and its command's `-Dkey=value` set (the command's win, as Flink reads
    dynamic properties last); a mounted config file is not seen here: the JobManager may be down."""
    properties = dict(container.flink_properties)
    command = list(container.command)
    for i, arg in enumerate(command):
        option = command[i + 1] if arg == "-D" and i + 1 < len(command) else arg[2:] if arg.startswith("-D") else ""
        key, _, value = option.partition("=")
        if key.strip() and value.strip():
            properties[key.strip()] = value.strip()
    return properties


def restore_path(container: ContainerState) -> str | None:
    """The restore path the container's JobManager starts its job from, if its command or FLINK_PROPERTIES
    set one."""
    command = list(container.command)
    for flag in RESTORE_PATH_FLAGS:
        if flag in command[:-1]:
            return command[command.index(flag) + 1]
    properties = properties_of(container)
    return next((properties[k] for k in RESTORE_PATH_KEYS if properties.get(k)), None)


def ha_of(container: ContainerState) -> str | None:
    """The high availability its FLINK_PROPERTIES or command set (None: none, or set where a stopped
    container's configuration cannot be read)."""
    return high_availability_type(properties_of(container))


def ended_with_its_job(container: ContainerState) -> bool:
    """It exited because its job ended: FAILED, FINISHED or CANCELED (not stopped or killed while the job ran)."""
    return container.state == "exited" and container.exit_code in (
        APPLICATION_FAILED_EXIT_CODE,
        APPLICATION_ENDED_EXIT_CODE,
    )


def ended_by_a_person_or_done(container: ContainerState) -> bool:
    """It exited 0: its job FINISHED, or a person ended it (a cancel, or the cluster shut down on purpose)."""
    return container.state == "exited" and container.exit_code == APPLICATION_ENDED_EXIT_CODE


def why_it_is_down(container: ContainerState, jobs: str) -> str:
    """`its job realtime-cdc-demo FAILED (exit code 163)`, `it is exited (exit code 143)`, ..."""
    if container.state == "exited" and container.exit_code == APPLICATION_FAILED_EXIT_CODE:
        return f"its job {jobs} FAILED (exit code {APPLICATION_FAILED_EXIT_CODE})"
    return f"it is {container.state}" + (f" (exit code {container.exit_code})" if container.exit_code else "")


def ended_refusal(name: str, jobs: str) -> str:
    """Exit 0 has its own answer: nothing went wrong that a start could mend, and HA cannot bring it back."""
    return (
        f"JobManager {name} runs {jobs} in application mode and exited 0: its job FINISHED, or was CANCELED by a "
        "person (or the cluster was shut down on purpose); a cancel stands. Not started: an application that "
        "ended is removed from HA storage, so a start would run the job again from scratch (every record again). "
        "If the end was meant, there is nothing to do. If not, restore it from a savepoint or a retained "
        "checkpoint, if one exists (after a cancel only with RETAIN_ON_CANCELLATION): set "
        f"execution.state-recovery.path (or --fromSavepoint) to it and start it yourself (docker start {name})"
    )


def start_refusal(container: ContainerState, jobs: str) -> str | None:
    """Why this stopped application JobManager is not started (None: started, HA brings its job back).

    Starting it runs `jobs` again: only high availability restores them from their checkpoint, and only if
    they had not ended (an application that FAILED, FINISHED or was cancelled is cleaned out of HA storage, and
    runs from scratch: a person's cancel would be undone and every record written again). A
    configured restore path is recognised, never trusted: it is fixed, and a restore from a point older than
    the newest checkpoint writes again what the sink committed since."""
    name = container.name
    if ended_by_a_person_or_done(container):
        return ended_refusal(name, jobs)
    why_down = why_it_is_down(container, jobs)
    ha = ha_of(container)
    if ha and not ended_with_its_job(container):
        return None
    path = restore_path(container)
    if path:
        return (
            f"JobManager {name} runs {jobs} in application mode and {why_down}; it is set to restore from {path}: "
            "not started, since a fixed restore path older than the job's newest retained checkpoint writes "
            "again what was committed since. Set execution.state-recovery.path (or --fromSavepoint) to its newest "
            f"retained checkpoint and start it yourself (docker start {name}); to have it done, {HA_TO_CONFIGURE}"
        )
    if ha:
        return (
            f"JobManager {name} runs {jobs} in application mode and {why_down}: an application that ended is "
            "removed from HA storage, so starting it would run the job again from scratch (every record again). "
            "Not started: set execution.state-recovery.path (or --fromSavepoint) to its newest retained "
            f"checkpoint and start it yourself (docker start {name})"
        )
    return (
        f"JobManager {name} runs {jobs} in application mode without high availability and {why_down}: starting it "
        "would run the job again from scratch (every record again). Not started: "
        f"{HA_TO_CONFIGURE}; or set execution.state-recovery.path (or --fromSavepoint) to the job's newest "
        f"retained checkpoint and start it yourself (docker start {name})"
    )


def application_ended_elsewhere(name: str, ended: list[str], jobs: str) -> str:
    """Another JobManager of the cluster exited because the application ended: HA forgot the job for all."""
    return (
        f"JobManager {name} runs {jobs} in application mode, and {', '.join(ended)} of the same cluster exited "
        "because the application ended (FAILED, FINISHED or CANCELED): HA storage no longer holds the job, so "
        f"starting {name} would run it again from scratch. Not started: read the JobManagers' logs"
    )


NO_SUBMISSION = (
    "its JobManager runs it in application mode (execution.target: embedded): it takes no job submission "
    "(no /jars), so it is never resubmitted; it comes back when Flink restarts it in place"
)
