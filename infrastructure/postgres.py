"""A PostgreSQL of our own for the scaled Prefect server: Debian's `postgresql` binaries, a data directory
under the scale-up's home, listening on 127.0.0.1 only (no Prefect here).

Idempotent: a data directory that exists is reused, a server that already runs on it is kept. PostgreSQL
refuses to run as root, so as root the server runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DATABASE = "prefect"
ROLE = "prefect"


class PostgresError(RuntimeError):
    pass


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise PostgresError("PostgreSQL is not installed (apt-get install postgresql; `make bootstrap` does it)")
    return found[-1].parent


@dataclass(frozen=True)
class LocalPostgres:
    home: Path  # owned by the server's user: data/, server.log
    port: int
    password: str

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Prefect's server takes (PREFECT_API_DATABASE_CONNECTION_URL)."""
        return f"postgresql+asyncpg://{ROLE}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self, *command: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
        )
        if check and result.returncode != 0:
            raise PostgresError(f"{' '.join(command[:2])} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return result

    def running(self) -> bool:
        return (
            self._as_owner(str(postgres_bin() / "pg_ctl"), "status", "-D", str(self.data), check=False).returncode == 0
        )

    def stop(self) -> None:
        if self.data.exists() and self.running():
            self._as_owner(str(postgres_bin() / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")


def _owned_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def start_postgres(home: Path, port: int) -> LocalPostgres:
    """Initialise (first time) and start PostgreSQL in `home`, with a role and a database for Prefect."""
    bindir = postgres_bin()
    home = home.resolve()
    password_file = home.parent / f"{home.name}.password"  # ours (root), not the database user's
    _owned_dir(home)
    if os.geteuid() == 0 and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(home)]).returncode:
        raise PostgresError(
            f"{home}: the postgres user cannot reach it (a parent directory is not world-searchable, e.g. mode 700); "
            "choose a --home under a directory others may enter"
        )
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(18)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
    db = LocalPostgres(home, port, password)
    if not (db.data / "PG_VERSION").exists():
        handover = home / "initdb.pw"
        handover.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(handover, "postgres", "postgres")
        try:
            db._as_owner(
                str(bindir / "initdb"), "-D", str(db.data), "-U", ROLE, f"--pwfile={handover}", "-E", "UTF8",
                "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
            )
        finally:
            handover.unlink(missing_ok=True)
    if not db.running():
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {db.data} -c max_connections=200"
        db._as_owner(str(bindir / "pg_ctl"), "start", "-D", str(db.data), "-l", str(db.log), "-w", "-t", "60",
                     "-o", options)
    env = {"PGPASSWORD": password}
    deadline = time.monotonic() + 30
    while True:
        probe = db._as_owner(
            str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, "-d", "postgres", "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'", check=False, env=env,
        )
        if probe.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if probe.returncode != 0:
        raise PostgresError(
            f"PostgreSQL on 127.0.0.1:{port} does not answer: {probe.stderr.strip()[-500:]}; see {db.log}"
        )
    if probe.stdout.strip() != "1":
        db._as_owner(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DATABASE, env=env)
    return db
