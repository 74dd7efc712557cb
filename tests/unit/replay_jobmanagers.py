"""A fleet of loopback Flink REST endpoints that replay answers recorded from real Flink (recorded.py).

One process, one asyncio loop, one listening socket per endpoint on 127.0.0.1:
cheap enough for 500 endpoints. Each endpoint replays one recorded scenario of
one release; `delay_s` answers slowly, `hang` accepts and reads the request but
never answers (a JobManager stuck in a GC pause, a half-dead proxy). Paths that
were not recorded answer 404 as Flink does. Used by the fleet check's unit
tests and by benchmarks/fleet.py (as a child process: `python -m
tests.unit.replay_jobmanagers SPEC.json`, which prints `ready` and serves until
stdin closes).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.unit.recorded import ENDPOINTS, recorded_answers


@dataclass(frozen=True)
class Endpoint:
    port: int
    version: str = "2.2.0"
    scenario: str = "healthy"
    delay_s: float = 0.0
    hang: bool = False


def _routes(version: str, scenario: str) -> dict[str, bytes]:
    answers = recorded_answers(version, scenario)
    job_id = answers["jobs_overview"]["jobs"][0]["jid"]
    routes = {}
    for name, path in ENDPOINTS.items():
        if name in answers:
            routes[path.format(jid=job_id)] = json.dumps(answers[name]).encode()
    return routes


async def _serve(
    endpoint: Endpoint, routes: dict[str, bytes], stopping: asyncio.Event, open_writers: set
) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if endpoint.hang:
                    await stopping.wait()
                    return
                if endpoint.delay_s:
                    await asyncio.sleep(endpoint.delay_s)
                path = head.split(b" ", 2)[1].decode().split("?", 1)[0]
                body = routes.get(path)
                status = b"200 OK" if body is not None else b"404 Not Found"
                body = body if body is not None else b'{"errors":["Not found: ' + path.encode() + b'"]}'
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json; charset=UTF-8\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            open_writers.discard(writer)
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", endpoint.port, backlog=256)


class ReplayFleet:
    """The endpoints served from a background thread of this process (for unit tests)."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = endpoints
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="replay jobmanagers")
        self._error: OSError | None = None
        self._servers: list[asyncio.Server] = []

    def _run(self) -> None:
        try:
            self._start()
        except OSError as exc:  # a port taken: said in __enter__, not lost in this thread
            self._error = exc
            self._ready.set()
            return
        self._loop.run_forever()

    def _start(self) -> None:
        asyncio.set_event_loop(self._loop)
        routes = {(e.version, e.scenario): None for e in self.endpoints}
        routes = {key: _routes(*key) for key in routes}
        self._stopping, self._writers = asyncio.Event(), set()
        self._servers = [
            self._loop.run_until_complete(_serve(e, routes[(e.version, e.scenario)], self._stopping, self._writers))
            for e in self.endpoints
        ]
        self._ready.set()

    def __enter__(self) -> ReplayFleet:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"the replayed JobManagers could not listen: {self._error}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        async def shut_down() -> None:
            self._stopping.set()  # hanging answers end
            for server in self._servers:
                server.close()
            for writer in list(self._writers):
                writer.close()  # idle keep-alive connections end
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait(tasks, timeout=5) if tasks else None

        asyncio.run_coroutine_threadsafe(shut_down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def main() -> None:
    endpoints = [Endpoint(**e) for e in json.loads(Path(sys.argv[1]).read_text())]
    with ReplayFleet(endpoints):
        print("ready", flush=True)
        sys.stdin.read()  # until the parent closes it (or dies)


if __name__ == "__main__":
    main()
