"""A deadline is a deadline: every REST call ends by its deadline, whatever the server does (Safety II, case 7).

Each hostile server below keeps a call alive the way a read timeout cannot see: it never goes silent for long.
The calls are timed from another thread, so that a call which never returns fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from typing import Any

import pytest

from flink_runbook.flink.rest import FlinkRestClient, FlinkRestError
from flink_runbook.runbook import model

DEADLINE_S = 1.5
MARGIN_S = 1.0  # a bound, not a benchmark: a shared machine may be slow to wake a thread
TRICKLE_S = 0.1  # far below every read timeout used here: no single read ever times out
GIVE_UP_S = 12.0  # how long a test waits for a call that does not return (the code before never did)


class _Stuck(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a connection outlives its call
    stopping: threading.Event  # set by the fixture: every handler gives up, the test run leaves nothing behind

    def _trickle(self, data: bytes) -> None:
        """Send `data` a byte at a time, then a byte of padding forever (until the client goes or the test ends)."""
        index = 0
        while not self.stopping.wait(TRICKLE_S):
            self.wfile.write(data[index : index + 1] if index < len(data) else b" ")
            self.wfile.flush()
            index += 1

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        with contextlib.suppress(OSError):  # the client hung up: that is the point
            self._answer()

    def _answer(self) -> None:
        if self.path == "/ok":
            body = json.dumps({"taskmanagers": 1}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/silent":  # reads the request, never answers
            self.stopping.wait(60)
        elif self.path == "/slow-status":  # the status line itself, a byte at a time
            self._trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}")
        elif self.path == "/slow-headers":  # a status line, then a header that never ends
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.wfile.flush()
            self._trickle(b"X-Slow: ")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path == "/trickle-length":  # a body of a stated length that never comes
                self.send_header("Content-Length", "100000")
            elif self.path == "/trickle-chunked":  # a chunked body of tiny chunks, never its last
                self.send_header("Transfer-Encoding", "chunked")
            else:  # /trickle-forever: a body that ends when the connection does, which is never
                self.send_header("Connection", "close")
            self.end_headers()
            if self.path == "/trickle-chunked":
                while not self.stopping.wait(TRICKLE_S):
                    self.wfile.write(b"1\r\n \r\n")
                    self.wfile.flush()
            else:
                self._trickle(b"[")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stuck_url():
    stopping = threading.Event()
    handler = type("Handler", (_Stuck,), {"stopping": stopping})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stopping.set()
    server.shutdown()
    server.server_close()


def timed(call) -> tuple[float, Any, BaseException | None]:
    """(seconds the call took, what it returned, what it raised), the call run on another thread; fails the test
    if it has not returned after GIVE_UP_S."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        begun = time.monotonic()
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - begun

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GIVE_UP_S)
    assert not thread.is_alive(), f"the call had not returned after {GIVE_UP_S}s (its deadline: {DEADLINE_S}s)"
    return outcome["elapsed"], outcome.get("value"), outcome.get("error")


def cut(client: FlinkRestClient, path: str, *, within: float) -> FlinkRestError:
    elapsed, value, error = timed(lambda: client.get(path))
    assert isinstance(error, FlinkRestError), f"{path}: {value!r} / {error!r} after {elapsed:.1f}s"
    assert elapsed <= within + MARGIN_S, f"{path}: took {elapsed:.1f}s, deadline {within}s: {error}"
    assert client.url(path) in str(error)
    return error


@pytest.mark.parametrize(
    "path, read",
    [
        ("/trickle-forever", "bytes of its body read"),
        ("/trickle-length", "bytes of its body read"),
        ("/trickle-chunked", "bytes of its body read"),
        ("/slow-headers", "no answer yet"),
        ("/slow-status", "no answer yet"),
        ("/silent", "no answer yet"),
    ],
)
def test_a_call_ends_at_its_own_deadline_whatever_the_server_does(stuck_url, path, read):
    # A read timeout far above the deadline: only the deadline can end these calls in time.
    client = FlinkRestClient(stuck_url, connect_timeout=1, read_timeout=10, read_retries=2, call_deadline=DEADLINE_S)
    error = cut(client, path, within=DEADLINE_S)
    assert f"did not finish within {DEADLINE_S:g}s" in str(error) and read in str(error)


def test_a_tls_handshake_that_never_ends_is_cut_at_the_deadline():
    # The kernel accepts the connection; nobody ever answers the ClientHello.
    with socket.create_server(("127.0.0.1", 0)) as listening:
        url = f"https://127.0.0.1:{listening.getsockname()[1]}"
        client = FlinkRestClient(url, connect_timeout=10, read_timeout=10, read_retries=0, call_deadline=DEADLINE_S)
        error = cut(client, "/overview", within=DEADLINE_S)
    assert f"did not finish within {DEADLINE_S:g}s" in str(error) and "no answer yet" in str(error)


def test_a_call_without_a_stated_deadline_ends_within_its_timeouts_together(stuck_url):
    client = FlinkRestClient(stuck_url, connect_timeout=0.5, read_timeout=1, read_retries=0)
    error = cut(client, "/trickle-forever", within=1.5)
    assert "did not finish within 1.5s" in str(error)


def test_a_check_ends_at_its_deadline_with_the_default_timeouts(stuck_url):
    client = FlinkRestClient(stuck_url)  # 3 s connect + 10 s read, two retries: far longer than the check may take
    for path in ("/trickle-forever", "/slow-headers", "/silent"):
        checked = client.until(time.monotonic() + DEADLINE_S)
        error = cut(checked, path, within=DEADLINE_S)
        assert "the check's deadline" in str(error)


def test_a_connection_that_outlives_its_call_is_not_cut_later(stuck_url):
    # Keep-alive: one connection serves the calls; its calls' deadlines pass while it idles and serves the next.
    client = FlinkRestClient(stuck_url, read_retries=0, call_deadline=0.3)
    for _ in range(3):
        assert client.get("/ok") == {"taskmanagers": 1}
    time.sleep(0.5)
    elapsed, value, error = timed(lambda: [client.get("/ok") for _ in range(3)])
    assert error is None and value == [{"taskmanagers": 1}] * 3


def test_a_client_cut_at_its_deadline_serves_the_next_call(stuck_url):
    client = FlinkRestClient(stuck_url, read_retries=0, call_deadline=0.5)
    cut(client, "/trickle-length", within=0.5)
    assert client.get("/ok") == {"taskmanagers": 1}


def test_calls_on_many_threads_each_end_at_their_own_deadline(stuck_url):
    client = FlinkRestClient(stuck_url, read_retries=0, call_deadline=DEADLINE_S)
    results: list[tuple[float, Any, BaseException | None]] = []
    paths = ["/trickle-forever", "/ok", "/slow-headers", "/ok", "/trickle-chunked", "/ok"]

    def one(path: str) -> None:
        results.append((path, *timed(lambda: client.get(path))))

    threads = [threading.Thread(target=one, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for path, elapsed, value, error in results:
        assert elapsed <= DEADLINE_S + MARGIN_S, f"{path} took {elapsed:.1f}s"
        if path == "/ok":
            assert error is None and value == {"taskmanagers": 1}, (path, error)
        else:
            assert isinstance(error, FlinkRestError), (path, value, error)


# -- the recovery's own deadline (recovery.deadline_s) ------------------------------------------------------


def test_a_recovery_past_its_deadline_starts_nothing_more_and_cuts_every_wait():
    import dataclasses
    import time

    from flink_runbook.inventory import ClusterSpec, ContainerSelector, RestSettings
    from flink_runbook.runbook.acting import execute
    from flink_runbook.runbook.deciding.plan import Action, PlannedAction, RecoveryPlan
    from flink_runbook.runbook.model import StepStatus

    cluster = ClusterSpec("c1", RestSettings(url="http://127.0.0.1:9"), ContainerSelector(compose_project="p"))
    soon = model.Progress(deadline_at=time.time() + 5)
    cut = execute.within_deadline(cluster, soon).recovery
    assert cut.taskmanager_timeout_s <= 5 and cut.verify_timeout_s <= 5 and cut.jobmanager_timeout_s <= 5
    assert execute.within_deadline(cluster, model.Progress()).recovery == cluster.recovery  # no deadline: as set

    past = model.Progress(deadline_at=time.time() - 1)
    plan = RecoveryPlan("c1", actions=(PlannedAction(Action.RESTART_TASKMANAGERS, "tm", "exited", containers=("tm",)),))
    after = execute.restart_taskmanagers(cluster, plan, None, past)  # no clients: nothing may be touched
    (step,) = after.steps
    assert step.status == StepStatus.FAILED and execute.DEADLINE_PASSED in step.detail and after.stopped
    # The stability window that would end after the deadline is not waited out as if it passed.
    window = dataclasses.replace(cluster, recovery=dataclasses.replace(cluster.recovery, stabilization_s=60))
    slept: list[float] = []
    late = execute.verify_stability(window, plan, None, model.Progress(deadline_at=time.time() + 10), slept.append)
    assert late.steps[-1].status == StepStatus.FAILED and slept == []
