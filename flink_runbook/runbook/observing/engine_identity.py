"""Which Docker engine is a cluster's: its engine ID, given in the inventory or learned (no Prefect).

A recovery may run on any worker. There "the local socket", or one docker.host, may reach another host's
engine, where a compose project of the same name has other containers: acting on them would restart a
healthy TaskManager of another cluster. So each cluster's engine is known by the ID it reports (`docker
info`): `docker.engine_id` in the inventory, or the ID seen at the cluster's first successful look, kept
beside its job lineage in <state_dir>/engines/<cluster>.json (written once, atomically: the first look
wins). An engine whose ID differs is not acted on; the finding names both.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flink_runbook.inventory import ENGINE_ID_PATTERN, ClusterSpec
from flink_runbook.runbook.keeping.state_files import open_no_follow, read_state_file


@dataclass(frozen=True)
class EngineMismatch:
    """The engine at the cluster's docker.host is not the cluster's (or which one is cannot be read)."""

    cluster: str
    where: str  # docker.host, or "DOCKER_HOST or the local socket"
    found: str  # the ID the engine there reports ('' : none)
    expected: str  # the cluster's engine ID ('' : it cannot be read)
    source: str  # where `expected` comes from

    def describe(self) -> str:
        return (
            f"the Docker engine at {self.where} is engine {self.found or '(it reports no ID)'}, not cluster "
            f"{self.cluster}'s engine {self.expected or '(unknown)'} ({self.source}): the containers of the same "
            "names there are another host's"
        )


def engine_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "engines" / f"{cluster}.json"


def read_engine_id(state_dir: Path, cluster: str) -> str | None:
    """The engine ID kept for the cluster; None when none is kept yet. A file that is there but holds no ID
    (cut short, edited, a symbolic link) raises ValueError naming it: the engine cannot be told, so it is
    not acted on."""
    path = engine_file(state_dir, cluster)
    try:
        data = json.loads(read_state_file(path))
    except (FileNotFoundError, NotADirectoryError):  # nothing there (the state dir may not be one yet)
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    value = data.get("engine_id") if isinstance(data, dict) else None
    if not isinstance(value, str) or not ENGINE_ID_PATTERN.fullmatch(value):
        raise ValueError(f"{path} holds no engine ID (engine_id: {value!r})")
    return value


def learn_engine_id(state_dir: Path, cluster: str, engine_id: str, where: str) -> str:
    """Keep `engine_id` as the cluster's engine unless one is kept already; returns the one kept. Written to a
    file of its own, then linked into place: a reader never sees half of it, and of two first looks at once
    (two workers, a CLI and a service) the first one wins and the other is judged by it."""
    path = engine_file(state_dir, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    learned = {"engine_id": engine_id, "docker_host": where, "learned_at": datetime.now(tz=UTC).isoformat()}
    try:
        with open(partial, "w", encoding="utf-8", opener=open_no_follow) as out:
            out.write(json.dumps(learned, indent=1) + "\n")
        os.link(partial, path)  # never replaces: a kept ID (or anything planted there) stays
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    return read_engine_id(state_dir, cluster) or engine_id


def engine_mismatch(cluster: ClusterSpec, found: str) -> EngineMismatch | None:
    """None when the engine that reports `found` is the cluster's (and, at the first look, learns it).

    Nothing kept yet and it cannot be written (a read-only state dir, e.g. a diagnose by another user): None,
    nothing to compare with; a recovery refuses to start without a writable state dir, so it always compares.
    """
    where = cluster.docker.where()
    if cluster.docker.engine_id:
        expected, source = cluster.docker.engine_id, "docker.engine_id in the inventory"
    else:
        path = engine_file(cluster.state_dir, cluster.name)
        try:
            kept = read_engine_id(cluster.state_dir, cluster.name)
            if kept is None and found:
                kept = learn_engine_id(cluster.state_dir, cluster.name, found, where)
        except ValueError as exc:
            return EngineMismatch(cluster.name, where, found, "", f"{exc}; remove it to learn the engine again")
        except OSError:
            return None
        if kept is None:
            return None  # an engine without an ID, and none kept: nothing to tell it by
        expected = kept
        source = f"seen at its first look and kept in {path}"
    return None if found == expected else EngineMismatch(cluster.name, where, found, expected, source)
