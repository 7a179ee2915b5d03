"""The ops page's query: which arguments it accepts, what each filter keeps, what a link keeps."""

from __future__ import annotations

import pytest

from regpilot.core.ops_query import BadQuery, PageQuery, parse_query

EVENT = {
    "model": "churn,fraud",
    "source": "runs",
    "outcome": "processed",
    "run_id": "abc123def",
    "delivery_id": "msg_77",
}


def test_no_arguments_mean_everything_newest_first_without_refresh():
    query = parse_query({})
    assert query == PageQuery() and query.matches(EVENT) and not query.filtered


@pytest.mark.parametrize(
    ("args", "keeps"),
    [
        ({"model": "fraud"}, True),  # one of the models a multi-model event names
        ({"model": "fra"}, False),  # a model filter is exact, not a prefix
        ({"source": "runs"}, True),
        ({"source": "mlflow"}, False),
        ({"outcome": "dead"}, False),
        ({"q": "123d"}, True),  # part of the run id
        ({"q": "msg_7"}, True),  # part of the delivery id
        ({"q": "zzz"}, False),
        ({"model": "churn", "outcome": "processed", "q": "abc"}, True),
    ],
)
def test_filters_and_search_keep_only_what_matches(args, keeps):
    assert parse_query(args).matches(EVENT) is keeps


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"page": "0"}, "page must be a whole number from 1"),
        ({"page": "two"}, "page must be a whole number"),
        ({"page": "-1"}, "page must be a whole number"),
        ({"page": "\u0661"}, "page must be a whole number"),  # a non-ASCII digit
        ({"page": "10001"}, "page must be a whole number"),
        ({"source": "slack"}, "source must be one of runs, mlflow"),
        ({"outcome": "exploded"}, "outcome must be one of queued"),
        ({"refresh": "7"}, "refresh must be one of 0, 10, 30, 60"),
        ({"model": "m" * 201}, "model is longer than 200"),
        ({"q": "a\x00b"}, "q contains control characters"),
        ({"before": "x" * 1001}, "before is longer than 1000"),
        ({"limit": "5"}, "unknown query parameter 'limit'"),
    ],
)
def test_a_bad_argument_is_named_with_what_to_send(args, reason):
    with pytest.raises(BadQuery, match=reason):
        parse_query(args)


def test_a_link_keeps_the_filters_and_drops_what_is_empty():
    query = parse_query({"model": "churn", "q": "abc", "refresh": "30", "page": "2"})
    assert query.link() == {"model": "churn", "q": "abc", "page": "2", "refresh": "30"}
    assert query.link(page="", before="runs:msg_1") == {
        "model": "churn",
        "q": "abc",
        "before": "runs:msg_1",
        "refresh": "30",
    }
