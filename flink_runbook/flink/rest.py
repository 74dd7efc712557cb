"""A small client for the Flink JobManager REST API.

One requests session, explicit connect/read timeouts, retries with backoff on
connection errors and 5xx answers for reads only (a POST may have taken
effect even if its answer was lost), and errors that say which URL was asked
and what came back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

BODY_PREVIEW_CHARS = 200


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
        self.body = body
        detail = f"{message} ({url}"
        if status is not None:
            detail += f", HTTP {status}"
        detail += ")"
        if body:
            detail += f": {summarize_error_body(body)!r}"
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.read_retries = read_retries
        self.backoff_seconds = backoff_seconds
        self.session = session or requests.Session()

    # -- transport ---------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _request(self, method: str, path: str, *, retries: int, **kwargs: Any) -> Any:
        url = self._url(path)
        attempt = 0
        while True:
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                if attempt < retries:
                    attempt += 1
                    time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                    continue
                raise FlinkRestError(f"{method} failed: {exc.__class__.__name__}: {exc}", url=url) from exc
            if response.status_code >= 500 and attempt < retries:
                attempt += 1
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                continue
            return self._decode(method, url, response)

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

    def get(self, path: str) -> Any:
        return self._request("GET", path, retries=self.read_retries)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._request("POST", path, retries=0, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self._request("PATCH", path, retries=0, **kwargs)

    # -- endpoints -----------------------------------------------------------

    def cluster_overview(self) -> dict[str, Any]:
        """GET /overview: flink-version, taskmanagers, slots-total, slots-available, jobs-running..."""
        return self.get("/overview")

    def taskmanagers(self) -> list[dict[str, Any]]:
        """GET /taskmanagers: the TaskManagers registered right now."""
        return self.get("/taskmanagers").get("taskmanagers", [])

    def jobs_overview(self) -> list[dict[str, Any]]:
        """GET /jobs/overview: every job the JobManager remembers (jid, name, state...)."""
        return self.get("/jobs/overview").get("jobs", [])

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/:jobid: state, duration, vertices of one job."""
        return self.get(f"/jobs/{job_id}")

    def job_exceptions(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/:jobid/exceptions: exception history of one job."""
        return self.get(f"/jobs/{job_id}/exceptions")

    def job_checkpoints(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/:jobid/checkpoints: counts, latest completed/restored, history."""
        return self.get(f"/jobs/{job_id}/checkpoints")

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
    ) -> str:
        """POST /jars/:jarid/run; returns the new job id."""
        body: dict[str, Any] = {"entryClass": entry_class, "programArgsList": program_args}
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

    def cancel_job(self, job_id: str) -> None:
        """PATCH /jobs/:jobid?mode=cancel."""
        self.patch(f"/jobs/{job_id}", params={"mode": "cancel"})
