"""Read a paged registry listing to its end: the one page-token loop every adapter uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

Fetch = Callable[[str | None], tuple[Sequence[T], str | None]]
"""Read one page: given the page token (None for the first page), return items and next token."""


class Pages(Generic[T]):
    """Iterate over the items of every page, counting the pages read.

    Reading goes on while the registry returns a next-page token, even past an empty page:
    a page may come back empty (filtered on the server side) with more pages behind it.
    `pages_read` counts the pages fetched so far, so a caller (retention) can report the work.
    """

    def __init__(self, fetch: Fetch[T]) -> None:
        self._fetch = fetch
        self.pages_read = 0

    def __iter__(self) -> Iterator[T]:
        token: str | None = None
        while True:
            items, token = self._fetch(token)
            self.pages_read += 1
            yield from items
            if not token:
                return


def iter_pages(fetch: Fetch[T]) -> Iterator[T]:
    """Yield every item of a paged listing (see Pages; use Pages to count pages)."""
    return iter(Pages(fetch))
