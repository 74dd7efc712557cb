"""A small client for the Flink JobManager REST API.

One requests session, explicit connect/read timeouts, retries with backoff on
connection errors and 5xx answers for reads only (a POST may have taken
effect even if its answer was lost), and errors that say which URL was asked
and what came back.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from flink_runbook.flink.answers import (
    AnswerInvalid,
    CheckpointStats,
    ClusterOverview,
    ExceptionHistory,
    JobInfo,
    JobSummary,
    TaskManagerInfo,
    parse_checkpoint_stats,
    parse_cluster_config,
    parse_cluster_overview,
    parse_exception_history,
    parse_job_details,
    parse_jobs_overview,
    parse_taskmanagers,
)
from flink_runbook.inventory import InventoryError, RestSettings

T = TypeVar("T")

BODY_PREVIEW_CHARS = 200
# What of an error goes into findings, events and reports: enough to act on, never a whole hostile answer.
ERROR_TEXT_CHARS = 1000
# The largest answer read: far above what a JobManager of thousands of jobs answers, far below harm.
MAX_ANSWER_BYTES = 32 * 1024 * 1024


def summarize_error_body(body: str) -> str:
    """The informative part of an answer body.

    Flink answers errors as {"errors": ["<java stack trace>", ...]}; the deepest
    "Caused by:" line says what went wrong. Anything else: the first bytes.
    """
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        errors = None
    if not errors or not isinstance(errors, list):
        return body[:BODY_PREVIEW_CHARS]
    lines = [line.strip() for line in str(errors[0]).splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    first = lines[0] if lines else ""
    return f"{first} ... {causes[-1]}" if causes else first[: BODY_PREVIEW_CHARS * 2]


class FlinkRestError(RuntimeError):
    """A Flink REST call failed; carries the URL and what came back."""

    def __init__(self, message: str, *, url: str, status: int | None = None, body: str = "") -> None:
        self.url = url
        self.status = status
        self.body = body[:ERROR_TEXT_CHARS]
        detail = f"{message} ({url}"
        if status is not None:
            detail += f", HTTP {status}"
        detail += ")"
        if body:
            detail += f": {summarize_error_body(body)!r}"
        if len(detail) > ERROR_TEXT_CHARS:
            detail = detail[: ERROR_TEXT_CHARS - 15] + " ... (cut)"
        super().__init__(detail)


class FlinkRestClient:
    """Talks to one JobManager's REST endpoint, e.g. http://127.0.0.1:8081."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        read_retries: int = 2,
        backoff_seconds: float = 0.5,
        session: requests.Session | None = None,
        call_deadline: float | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        # The read timeout bounds each read, not the call: a server trickling a byte a second would hold it.
        self.call_deadline = call_deadline if call_deadline is not None else connect_timeout + read_timeout
        self.max_answer_bytes = max_answer_bytes
        self.read_retries = read_retries
        self.backoff_seconds = backoff_seconds
        self.session = session or requests.Session()
        # An absolute time.monotonic() by which every call must be done (None: each call's own limits only).
        self.deadline: float | None = None

    def until(self, deadline: float) -> FlinkRestClient:
        """This client (same session) with every call cut short at `deadline` (time.monotonic()): a health
        check that must end in time, whatever the server does; no retry is started that cannot finish."""
        bounded = copy.copy(self)
        bounded.deadline = deadline
        return bounded

    def _left_s(self, method: str, url: str) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FlinkRestError(f"{method} not attempted: the check's deadline had passed", url=url)
        return left

    # -- transport ---------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _request(self, method: str, path: str, *, retries: int, **kwargs: Any) -> Any:
        url = self._url(path)
        attempt = 0
        while True:
            try:
                response = self._bounded(method, url, **kwargs)
            except requests.RequestException as exc:
                if attempt < retries and self._may_retry(attempt + 1):
                    attempt += 1
                    time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                    continue
                cut = self.deadline is not None and time.monotonic() >= self.deadline - 0.1
                why = f"{exc.__class__.__name__}: {exc}" + (" (cut at the check's deadline)" if cut else "")
                raise FlinkRestError(f"{method} failed: {why}", url=url) from exc
            if response.status_code >= 500 and attempt < retries and self._may_retry(attempt + 1):
                attempt += 1
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                continue
            return self._decode(method, url, response)

    def _may_retry(self, attempt: int) -> bool:
        """Whether the backoff before `attempt` still leaves time for it before the check's deadline."""
        backoff = self.backoff_seconds * 2 ** (attempt - 1)
        return self.deadline is None or time.monotonic() + backoff < self.deadline

    def _bounded(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP call within one deadline and one size limit (an answer over either is an error)."""
        left = self._left_s(method, url)
        timeout, call_deadline = self.timeout, self.call_deadline
        if left is not None:
            timeout = (min(timeout[0], left), min(timeout[1], left))
            call_deadline = min(call_deadline, left)
        response = self.session.request(method, url, timeout=timeout, stream=True, **kwargs)
        deadline = time.monotonic() + call_deadline  # from the headers on: an upload's time is not counted
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise FlinkRestError(
                        f"{method} answered more than {self.max_answer_bytes} bytes; not read further", url=url
                    )
                if time.monotonic() > deadline:
                    raise FlinkRestError(
                        f"{method} did not finish answering within {call_deadline:.0f}s "
                        f"({size} bytes so far); the server is stuck or trickling",
                        url=url,
                    )
                chunks.append(chunk)
        finally:
            response.close()
        response._content = b"".join(chunks)  # what .json() and .text read
        return response

    @staticmethod
    def _decode(method: str, url: str, response: requests.Response) -> Any:
        if not response.ok:
            raise FlinkRestError(
                f"{method} answered an error", url=url, status=response.status_code, body=response.text
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise FlinkRestError(
                f"{method} answered something that is not JSON",
                url=url,
                status=response.status_code,
                body=response.text,
            ) from exc

    def url(self, path: str) -> str:
        return self._url(path)

    def get(self, path: str, read: Callable[[Any], T] | None = None) -> Any:
        """GET path; with `read`, Flink's answer as the runbook reads it (an unreadable one is a FlinkRestError)."""
        answer = self._request("GET", path, retries=self.read_retries)
        if read is None:
            return answer
        try:
            return read(answer)
        except AnswerInvalid as exc:
            raise FlinkRestError(
                f"GET answered JSON that is not what Flink answers: {exc}",
                url=self._url(path),
                status=200,
                body=json.dumps(answer)[:BODY_PREVIEW_CHARS],
            ) from exc

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._request("POST", path, retries=0, **kwargs)

    # -- endpoints, read by flink_runbook.flink.answers --------------------------------

    def cluster_overview(self) -> ClusterOverview:
        """GET /overview: flink-version, taskmanagers, slots-total, slots-available."""
        return self.get("/overview", parse_cluster_overview)

    def jobmanager_config(self) -> dict[str, str]:
        """GET /jobmanager/config: the JobManager's effective configuration."""
        return self.get("/jobmanager/config", parse_cluster_config)

    def taskmanagers(self, now_ms: int | None = None) -> list[TaskManagerInfo]:
        """GET /taskmanagers: the TaskManagers registered right now."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        return self.get("/taskmanagers", lambda answer: parse_taskmanagers(answer, now))

    def jobs_overview(self) -> list[JobSummary]:
        """GET /jobs/overview: every job the JobManager remembers."""
        return self.get("/jobs/overview", parse_jobs_overview)

    def live_jobs_named(self, name: str) -> list[JobSummary]:
        """The jobs of that name that are not in a terminal state (two of them would be two copies)."""
        return [job for job in self.jobs_overview() if job.name == name and job.live]

    def job(self, job_id: str) -> JobInfo:
        """GET /jobs/:jobid: name, state, start time, tasks (without exceptions and checkpoints)."""
        return self.get(f"/jobs/{job_id}", parse_job_details)

    def job_exceptions(self, job_id: str) -> ExceptionHistory:
        """GET /jobs/:jobid/exceptions: the exception history, newest first."""
        return self.get(f"/jobs/{job_id}/exceptions", parse_exception_history)

    def job_checkpoints(self, job_id: str) -> CheckpointStats:
        """GET /jobs/:jobid/checkpoints: counts, latest completed/savepoint/restored (404: checkpointing off)."""
        return self.get(f"/jobs/{job_id}/checkpoints", parse_checkpoint_stats)

    def job_checkpoint_config(self, job_id: str, read: Callable[[Any], T] | None = None) -> Any:
        """GET /jobs/:jobid/checkpoints/config: interval, timeout, externalization (404: checkpointing off).

        As it came unless `read` is given: the audit reads more of it than the runbook (parse_checkpoint_config).
        """
        return self.get(f"/jobs/{job_id}/checkpoints/config", read)

    def upload_jar(self, jar_path: Path) -> str:
        """POST /jars/upload; returns the jar id to run it with."""
        with open(jar_path, "rb") as jar:
            answer = self.post("/jars/upload", files={"jarfile": (jar_path.name, jar, "application/x-java-archive")})
        filename = (answer or {}).get("filename")
        if not filename:
            raise FlinkRestError(
                "jar upload answered without a filename", url=self._url("/jars/upload"), body=str(answer)
            )
        return Path(filename).name

    def run_jar(
        self,
        jar_id: str,
        *,
        entry_class: str,
        program_args: list[str],
        parallelism: int | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool = False,
        job_id: str | None = None,
    ) -> str:
        """POST /jars/:jarid/run; returns the new job id. With `job_id` (32 hex digits) Flink runs the job under
        that id and refuses a second job of the same id (DuplicateJobSubmissionException)."""
        body: dict[str, Any] = {"entryClass": entry_class, "programArgsList": program_args}
        if job_id:
            body["jobId"] = job_id
        if parallelism is not None:
            body["parallelism"] = parallelism
        if savepoint_path:
            body["savepointPath"] = savepoint_path
            body["allowNonRestoredState"] = allow_non_restored_state
        answer = self.post(f"/jars/{jar_id}/run", json=body)
        job_id = (answer or {}).get("jobid")
        if not job_id:
            raise FlinkRestError(
                "jar run answered without a jobid", url=self._url(f"/jars/{jar_id}/run"), body=str(answer)
            )
        return job_id


def rest_client(settings: RestSettings, secret: Callable[[str], str] | None = None) -> FlinkRestClient:
    """The one way to build a cluster's REST client: its auth, TLS and timeouts from the inventory.

    `secret(name)` resolves a Prefect Secret block; the core never imports Prefect.
    """
    session = requests.Session()
    auth = settings.auth
    if auth.kind == "basic":
        user, password = os.environ.get(auth.username_env or ""), os.environ.get(auth.password_env or "")
        if user is None or password is None:
            raise InventoryError(
                f"basic auth for {settings.url} needs environment variables {auth.username_env} and {auth.password_env}"
            )
        session.auth = (user, password)
    elif auth.kind == "bearer":
        token = os.environ.get(auth.token_env) if auth.token_env else None
        if token is None and auth.token_secret_block:
            if secret is None:
                raise InventoryError(f"bearer token for {settings.url} is in Secret block {auth.token_secret_block!r}")
            token = secret(auth.token_secret_block)
        if not token:
            raise InventoryError(f"bearer auth for {settings.url} found no token ({auth.token_env})")
        session.headers["Authorization"] = f"Bearer {token}"
    # The environment's proxies and CA bundle, read once here: requests reads them again on every call
    # otherwise (a scan of os.environ per request, a fifth of a fleet check's CPU).
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(settings.url)
    environment_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if settings.ca_bundle:
        session.verify = str(settings.ca_bundle)
    else:
        session.verify = (environment_bundle or True) if settings.verify_tls else False
    if settings.client_cert:
        session.cert = (
            (str(settings.client_cert), str(settings.client_key)) if settings.client_key else str(settings.client_cert)
        )
    return FlinkRestClient(
        settings.url,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        session=session,
    )
