"""JobManager high availability: does a started JobManager bring its jobs back by itself (pure).

With `high-availability.type` set (zookeeper, kubernetes, or a factory class),
a new JobManager process takes the leadership, reads the job graphs from its
HA storage and restarts those jobs under their old ids. It may do so only
after its REST API already answers; a job resubmitted before that would run
twice (the restored copy under its old id, the resubmitted one under a new
id). So after starting a JobManager the recovery waits, bounded, until the
jobs HA may bring back are listed, and only then plans any resubmission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flink_runbook.flink.answers import JobSummary, pick_job

# Where Flink reads the HA mode: the key, then its older names, in the order Flink tries them
# (HighAvailabilityOptions.HA_MODE, withDeprecatedKeys("recovery.mode", "high-availability")).
HA_TYPE_KEYS = ("high-availability.type", "recovery.mode", "high-availability")
# What Flink reads as "no high availability" ("standalone" is the old name of NONE).
NO_HA = frozenset({"none", "standalone"})
# A restored job is listed at once, INITIALIZING until its JobMaster runs; meanwhile Flink answers its
# checkpoints with HTTP 500 ("not available while the JobManager is initializing"): not observable yet.
INITIALIZING = "INITIALIZING"


def high_availability_type(config: Mapping[str, str]) -> str | None:
    """The HA services the JobManager runs with, as its live configuration (GET /jobmanager/config)
    says: "zookeeper", "kubernetes" or a factory class name; None without HA."""
    for key in HA_TYPE_KEYS:
        value = str(config.get(key, "")).strip()
        if value:
            return None if value.lower() in NO_HA else value
    return None


def ha_type_described(config: Mapping[str, str]) -> str:
    """How the report names the HA setting, e.g. "high-availability.type: zookeeper"."""
    for key in HA_TYPE_KEYS:
        value = str(config.get(key, "")).strip()
        if value:
            return f"{key}: {value}"
    return "high-availability.type not set (NONE)"


@dataclass(frozen=True)
class ExpectedJob:
    """A configured job that HA may bring back, and the id this tool last saw it run under (if any)."""

    name: str
    last_id: str | None = None


def jobs_expected_back(job_names: Iterable[str], lineage: Mapping[str, tuple[str, ...]]) -> tuple[ExpectedJob, ...]:
    """Every configured job: which of them ran when the JobManager went away is unknown (its REST API was
    down), and HA restores all it holds at once, so each one is waited for (bounded) by name."""
    return tuple(ExpectedJob(name, (lineage.get(name) or (None,))[-1]) for name in job_names)


@dataclass(frozen=True)
class HaRestore:
    """What a started HA JobManager lists of the jobs expected back, at one moment."""

    listed: tuple[tuple[ExpectedJob, JobSummary], ...] = ()
    missing: tuple[ExpectedJob, ...] = ()

    @property
    def initializing(self) -> tuple[ExpectedJob, ...]:
        return tuple(expected for expected, job in self.listed if job.state == INITIALIZING)

    @property
    def complete(self) -> bool:
        """Every expected job is listed, past INITIALIZING: nothing is left for HA to bring back, and what it
        brought back can be observed in full; planning may start."""
        return not self.missing and not self.initializing

    def describe(self) -> str:
        parts = []
        for expected, job in self.listed:
            if expected.last_id is None:
                under = "(no earlier id known)"
            elif job.id == expected.last_id:
                under = "(its old id)"
            else:
                under = f"(not its last known id {expected.last_id})"
            parts.append(f"{expected.name} listed as {job.id} {under}, {job.state}")
        parts += [f"{expected.name} not listed" for expected in self.missing]
        return "; ".join(parts)


def ha_restore(expected: Iterable[ExpectedJob], jobs: Iterable[JobSummary]) -> HaRestore:
    """Which expected jobs the JobManager lists now (GET /jobs/overview), in any state: one listed is
    HA's, whatever it does next, and the plan finds it by name; the rest are still missing."""
    jobs = list(jobs)
    listed, missing = [], []
    for job in expected:
        # Under its old id if it is there; else the one of its name that matters now, as the plan picks it.
        found = next((j for j in jobs if j.name == job.name and j.id == job.last_id), None) or pick_job(jobs, job.name)
        if found is None:
            missing.append(job)
        else:
            listed.append((job, found))
    return HaRestore(tuple(listed), tuple(missing))
