"""Test-only tasks for tests/integration/test_worker_death.py, loaded with `celery worker -I`.

They count their runs in Redis, so a test can tell a task that ran once from one that a broker
handed out twice. Not part of regpilot: its own task names live in regpilot/queue/names.py.
"""

from __future__ import annotations

import time

import redis

from tasks.celery_app import app

HOLD = "regpilot-test.hold"
COUNT = "regpilot-test.count"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(app.conf.regpilot_settings.redis_url)


@app.task(name=HOLD, acks_late=True, reject_on_worker_lost=True)
def hold(counter: str, release: str, seconds: int) -> None:
    """Count a start, then block until the test pushes onto `release` (a long evaluation)."""
    client = _redis()
    client.incr(counter)
    deadline = time.monotonic() + seconds
    # Short blocking reads: a client's socket timeout must not end the wait early.
    while client.blpop([release], timeout=1) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} was not pushed within {seconds} s")
    client.incr(counter + ":done")


@app.task(name=COUNT, acks_late=True, reject_on_worker_lost=True)
def count(counter: str) -> None:
    """Count a run (a retry that waited for its ETA)."""
    _redis().incr(counter)
