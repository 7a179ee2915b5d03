"""The alias timeline: every move from the decision records, and who held the alias when."""

from __future__ import annotations

import pytest

from regpilot.core.timeline import BadInstant, alias_moves, holder_at, iso, parse_instant

T0 = parse_instant("2026-11-30T10:00Z")
WORKER = {"source": "runs", "delivery_id": "msg_1"}
PERSON = {"source": "cli", "actor": "ana"}

# Newest first, as RedisStore.decisions() returns them.
RECORDS = [
    {"at": T0 + 500, "kind": "alias_deleted", "alias": "champion", "version": 2, "trigger": PERSON},
    {
        "at": T0 + 400,
        "kind": "rollback",
        "alias": "champion",
        "version": 2,
        "previous": 3,
        "trigger": PERSON,
    },
    {
        "at": T0 + 300,
        "kind": "promotion",
        "alias": "champion",
        "version": 3,
        "previous": 2,
        "trigger": {"source": "runs", "delivery_id": "msg_3"},
    },
    {
        "at": T0 + 250,
        "kind": "alias",
        "alias": "challenger",
        "version": 3,
        "previous": 2,
        "trigger": {"source": "runs", "delivery_id": "msg_3"},
    },
    {
        "at": T0 + 240,
        "kind": "registration",
        "version": 3,
        "run_id": "r3",
        "trigger": {"source": "runs", "delivery_id": "msg_3"},
    },
    {
        "at": T0 + 200,
        "kind": "promotion",
        "alias": "champion",
        "version": 2,
        "previous": None,
        "trigger": PERSON,
    },
    {"at": T0 + 100, "kind": "gate", "verdict": "PASSED", "trigger": WORKER},
]


def test_every_move_of_the_alias_oldest_first_with_who_and_why():
    moves = alias_moves(RECORDS, "champion")
    assert [(m.from_version, m.to_version) for m in moves] == [(None, 2), (2, 3), (3, 2), (2, None)]
    assert [m.by for m in moves] == ["cli:ana", "runs:msg_3", "cli:ana", "cli:ana"]
    assert moves[0].why == "promoted by hand"
    assert moves[1].why.startswith("auto-promoted")
    assert moves[2].why == "rolled back: v3 gave the alias back to v2"
    assert moves[3].why == "alias removed by hand"
    assert moves[0].as_dict()["at_iso"] == "2026-11-30T10:03:20+00:00"


def test_an_automatic_challenger_move_says_which_run_passed():
    (move,) = alias_moves(RECORDS, "challenger")
    assert (move.from_version, move.to_version) == (2, 3)
    assert move.why == "passed its gate (run r3); newest passing version"


@pytest.mark.parametrize(
    ("offset", "version", "since"),
    [
        (199, None, None),  # before the first move: nobody held it
        (200, 2, 200),  # the instant of a move counts as after it
        (299, 2, 200),
        (350, 3, 300),
        (450, 2, 400),
        (600, None, 500),  # removed
    ],
)
def test_holder_at_an_instant(offset, version, since):
    held = holder_at(alias_moves(RECORDS, "champion"), T0 + offset)
    assert held.version == version
    assert held.since == (None if since is None else T0 + since)


def test_before_the_first_record_the_previous_holder_is_known_but_not_since_when():
    held = holder_at(alias_moves(RECORDS, "challenger"), T0)
    assert (held.version, held.since, held.move) == (2, None, None)
    assert holder_at([], T0).version is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T12:00Z", "2026-11-30T12:00:00+00:00"),
        ("2026-11-30T12:00", "2026-11-30T12:00:00+00:00"),
        ("2026-11-30T13:00:00+01:00", "2026-11-30T12:00:00+00:00"),
        ("2026-11-30", "2026-11-30T00:00:00+00:00"),
    ],
)
def test_instants_are_iso_8601_and_utc_without_a_zone(text, expected):
    assert iso(parse_instant(text)) == expected


def test_a_bad_instant_is_a_clear_error():
    with pytest.raises(BadInstant, match="not an ISO 8601 time"):
        parse_instant("last tuesday")


def test_a_person_registering_moves_challenger_by_the_gate_but_setting_it_is_by_hand():
    records = [
        {
            "at": T0 + 900,
            "kind": "alias",
            "alias": "challenger",
            "version": 1,
            "previous": 4,
            "trigger": PERSON,
        },
        {
            "at": T0 + 11,
            "kind": "alias",
            "alias": "challenger",
            "version": 4,
            "previous": None,
            "trigger": PERSON,
        },
        {"at": T0 + 10, "kind": "registration", "version": 4, "run_id": "r4", "trigger": PERSON},
    ]
    first, second = alias_moves(records, "challenger")
    assert first.why == "passed its gate (run r4); newest passing version"
    assert second.why == "set by hand"


def test_judgements_join_a_run_verdict_to_the_version_it_registered():
    from regpilot.core.timeline import judgements

    failed = [
        {
            "name": "test_accuracy",
            "expected": ">= 0.85",
            "actual": "0.6",
            "result": "FAILED",
            "reason": "",
        }
    ]
    records = [
        {
            "at": T0 + 30,
            "kind": "gate",
            "run_id": "r9",
            "verdict": "FAILED",
            "checks": failed,
            "trigger": WORKER,
        },
        {"at": T0 + 21, "kind": "registration", "version": 4, "run_id": "r4", "trigger": WORKER},
        {
            "at": T0 + 20,
            "kind": "gate",
            "run_id": "r4",
            "verdict": "PASSED",
            "checks": [],
            "trigger": WORKER,
        },
        {
            "at": T0 + 10,
            "kind": "gate",
            "version": 3,
            "verdict": "FAILED",
            "checks": failed,
            "trigger": PERSON,
        },
        {"at": T0 + 5, "kind": "gate", "run_id": "r1", "verdict": "SKIPPED", "trigger": PERSON},
    ]
    rows = judgements(records)
    assert [(j.version, j.run_id, j.verdict) for j in rows] == [
        (None, "r9", "FAILED"),
        (4, "r4", "PASSED"),
        (3, None, "FAILED"),
    ]
    assert rows[0].failed_checks[0]["name"] == "test_accuracy"
    assert rows[2].by == "cli:ana"
