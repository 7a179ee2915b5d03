"""The one page-token loop: every page read, empty pages passed over, pages counted."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from regpilot.registry.paging import Pages, iter_pages


class Listing:
    """A paged listing that records the tokens it was asked for."""

    def __init__(self, pages: list[list[int]]) -> None:
        self.pages = pages
        self.asked: list[str | None] = []

    def __call__(self, token: str | None) -> tuple[Sequence[int], str | None]:
        self.asked.append(token)
        index = int(token) if token else 0
        following = str(index + 1) if index + 1 < len(self.pages) else None
        return self.pages[index], following


def test_one_page_without_token_is_read_once() -> None:
    listing = Listing([[1, 2, 3]])
    assert list(iter_pages(listing)) == [1, 2, 3]
    assert listing.asked == [None]


def test_every_page_is_read_in_order_passing_each_token_back() -> None:
    listing = Listing([[1, 2], [3], [4, 5]])
    pages = Pages(listing)
    assert list(pages) == [1, 2, 3, 4, 5]
    assert listing.asked == [None, "1", "2"]
    assert pages.pages_read == 3


def test_empty_pages_with_a_next_token_do_not_end_the_listing() -> None:
    listing = Listing([[], [], [7], [], [8]])
    pages = Pages(listing)
    assert list(pages) == [7, 8]
    assert pages.pages_read == 5


def test_an_empty_listing_is_one_page_and_no_items() -> None:
    pages = Pages(Listing([[]]))
    assert list(pages) == []
    assert pages.pages_read == 1


@pytest.mark.parametrize("last_token", [None, ""])
def test_a_missing_or_empty_token_ends_the_listing(last_token: str | None) -> None:
    calls: list[str | None] = []

    def fetch(token: str | None) -> tuple[Sequence[str], str | None]:
        calls.append(token)
        return (["a"], "next") if token is None else (["b"], last_token)

    assert list(iter_pages(fetch)) == ["a", "b"]
    assert calls == [None, "next"]


def test_pages_are_fetched_lazily_and_counted_as_read() -> None:
    listing = Listing([[1], [2], [3]])
    pages = Pages(listing)
    items = iter(pages)
    assert next(items) == 1
    assert pages.pages_read == 1
    assert listing.asked == [None]  # stopping early costs no further call
    assert next(items) == 2
    assert pages.pages_read == 2
