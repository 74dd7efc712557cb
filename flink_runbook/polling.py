"""Wait for a condition on a real system, with a deadline and a useful timeout message."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold before the deadline; says what was last seen (also as `last`)."""

    def __init__(self, message: str, last: object = None) -> None:
        super().__init__(message)
        self.last = last


def wait_until(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """Call observe() until done(observation) holds; return that observation.

    Exceptions listed in `tolerate` count as "not yet" (e.g. a REST endpoint
    that is still starting); the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last: object = "nothing observed"
    while True:
        try:
            observation = observe()
            if done(observation):
                return observation
            last = observation
        except tolerate as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"gave up after {timeout:.0f}s waiting for {what}; last seen: {last}", last)
        time.sleep(interval)
