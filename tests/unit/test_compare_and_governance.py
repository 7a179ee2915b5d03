"""Pure pieces of the registry commands: compare, alias names, decision tags, tags, history."""

from __future__ import annotations

import json
import math

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regpilot.cli.governance_cmds import describe
from regpilot.cli.registry_cmds import parse_tags
from regpilot.core.compare import Change, compare_metrics, directions_of
from regpilot.core.gate import ChampionRule, Direction, GateRules, Threshold
from regpilot.core.naming import alias_problem
from regpilot.core.tags import LAST_DECISION, MAX_TAG_VALUE, decision_record, is_safe_tag_key

# --- compare ---------------------------------------------------------------------------------


def test_a_metric_on_one_side_only_is_missing_not_zero():
    rows = {r.metric: r for r in compare_metrics({"a": 1.0, "old": 2.0}, {"a": 1.5, "new": 0.0})}
    assert (rows["old"].old, rows["old"].new, rows["old"].delta) == (2.0, None, None)
    assert rows["old"].change is Change.ONLY_OLD
    assert (rows["new"].old, rows["new"].new, rows["new"].delta) == (None, 0.0, None)
    assert rows["new"].change is Change.ONLY_NEW
    assert rows["a"].delta == 0.5 and rows["a"].change is Change.CHANGED


def test_direction_decides_better_or_worse_and_ties_are_same():
    directions = {"acc": Direction.MIN, "rmse": Direction.MAX}
    rows = {
        r.metric: r.change
        for r in compare_metrics(
            {"acc": 0.9, "rmse": 0.3, "tie": 1.0}, {"acc": 0.8, "rmse": 0.2, "tie": 1.0}, directions
        )
    }
    assert rows == {"acc": Change.WORSE, "rmse": Change.BETTER, "tie": Change.SAME}


def test_nan_gives_no_delta():
    (row,) = compare_metrics({"m": math.nan}, {"m": 1.0})
    assert row.delta is None and row.change is Change.NOT_COMPARABLE


def test_directions_come_from_thresholds_then_the_champion_rule():
    rules = GateRules(
        thresholds=(Threshold("rmse", Direction.MAX, 0.3),),
        champion=ChampionRule("acc", Direction.MIN, 0.01),
    )
    assert directions_of(rules) == {"rmse": Direction.MAX, "acc": Direction.MIN}


metric_maps = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e"]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)


@given(old=metric_maps, new=metric_maps, direction=st.sampled_from(list(Direction)))
def test_compare_invariants(old, new, direction):
    rows = compare_metrics(old, new, dict.fromkeys(set(old) | set(new), direction))
    assert [r.metric for r in rows] == sorted(set(old) | set(new))
    for row in rows:
        assert row.old == old.get(row.metric) and row.new == new.get(row.metric)
        if row.old is None or row.new is None:
            assert row.delta is None
            continue
        assert row.delta == row.new - row.old
        if row.delta == 0:
            assert row.change is Change.SAME
        else:
            improved = (row.delta > 0) == (direction is Direction.MIN)
            assert row.change is (Change.BETTER if improved else Change.WORSE)


# --- alias names -----------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["champion", "challenger", "Champion", "prod_2", "a-b", "9lives"])
def test_acceptable_aliases(alias):
    assert alias_problem(alias) is None


@pytest.mark.parametrize(
    ("alias", "reason"),
    [
        ("latest", "reserved"),
        ("LATEST", "reserved"),
        ("v3", "looks like a version"),
        ("V12", "looks like a version"),
        ("", "letters, digits"),
        ("has space", "letters, digits"),
        ("dot.ted", "letters, digits"),
        ("x" * 256, "1 to 255"),
    ],
)
def test_aliases_the_registry_refuses(alias, reason):
    problem = alias_problem(alias)
    assert problem is not None and reason in problem


# --- decision tags ---------------------------------------------------------------------------


def test_decision_tag_is_uc_safe_and_within_the_limit():
    assert is_safe_tag_key(LAST_DECISION)
    value = decision_record(
        "gate",
        "2026-11-27T10:00:00+00:00",
        {"source": "runs", "delivery_id": "msg_1"},
        {"checks": [{"name": f"metric_{i}", "actual": "0.5"} for i in range(200)]},
    )
    assert len(value) <= MAX_TAG_VALUE
    parsed = json.loads(value)
    assert parsed["kind"] == "gate" and parsed["by"] == "runs:msg_1" and parsed["truncated"]


def test_decision_tag_names_the_person():
    parsed = json.loads(decision_record("rollback", "t", {"source": "cli", "actor": "ana"}, {}))
    assert parsed == {"kind": "rollback", "at": "t", "by": "cli:ana"}


# --- --tags ----------------------------------------------------------------------------------


def test_tags_parse_and_keep_equals_signs_in_values():
    assert parse_tags(("team=fraud", "expr=a=b", "empty="), False) == {
        "team": "fraud",
        "expr": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("item", "unity_catalog", "message"),
    [
        ("novalue", False, "not key=value"),
        ("=x", False, "not key=value"),
        ("validation_status=PASSED", False, "set by regpilot itself"),
        ("previous_champion=1", False, "set by regpilot itself"),
        ("team.name=x", True, "Unity Catalog"),
        ("k=" + "x" * (MAX_TAG_VALUE + 1), True, "exceeds"),
    ],
)
def test_bad_tags_are_refused(item, unity_catalog, message):
    with pytest.raises(click.BadParameter, match=message):
        parse_tags((item,), unity_catalog)


def test_dotted_keys_are_fine_off_unity_catalog():
    assert parse_tags(("team.name=x",), False) == {"team.name": "x"}


# --- history lines ---------------------------------------------------------------------------


def test_history_line_spells_out_failed_checks_and_skips_empty_values():
    entry = {
        "at": 1.0,
        "model": "m",
        "kind": "gate",
        "trigger": {"source": "runs"},
        "run_id": "r1",
        "verdict": "FAILED",
        "previous": None,
        "checks": [
            {"name": "acc", "expected": ">= 0.9", "actual": "0.6", "result": "FAILED"},
            {"name": "rec", "expected": ">= 0.8", "actual": "0.9", "result": "PASSED"},
        ],
    }
    assert describe(entry) == "run_id=r1 checks=2 acc=0.6 (expected >= 0.9)"
