"""What a task's result adds to its delivery in the event history (`ops events` columns)."""

from __future__ import annotations

from tasks.base import found_in


def test_a_run_result_gives_the_verdict_model_and_version():
    result = {
        "outcome": "processed",
        "results": [{"model_name": "wine", "status": "FAILED", "version": None}],
    }
    assert found_in(result) == {"model": "wine", "verdict": "FAILED"}


def test_a_version_result_keeps_the_version_a_number():
    result = {"outcome": "processed", "result": {"name": "wine", "version": 3, "status": "PASSED"}}
    assert found_in(result) == {"model": "wine", "verdict": "PASSED", "version": 3}


def test_several_models_are_listed_and_a_result_without_models_adds_nothing():
    two = {
        "results": [
            {"model_name": "a", "status": "PASSED", "version": 1},
            {"model_name": "b", "status": "FAILED", "version": None},
        ]
    }
    assert found_in(two) == {"model": "a,b", "verdict": "PASSED,FAILED", "version": 1}
    assert found_in({"outcome": "processed", "found": 2}) == {}
    assert found_in(None) == {}
