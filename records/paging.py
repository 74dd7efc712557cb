"""One way to read a Prefect collection whole: page after page, never cut at the API's maximum."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# The most the Prefect API answers per page.
PAGE = 200


def every_page(read_page: Callable[[int, int], list[T]]) -> list[T]:
    """All items `read_page(limit, offset)` answers, page by page until a short page.

    The caller sorts by something stable (an id), so pages neither overlap nor skip.
    """
    items: list[T] = []
    while True:
        page = read_page(PAGE, len(items))
        items.extend(page)
        if len(page) < PAGE:
            return items
