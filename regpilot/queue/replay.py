"""Replay dead letters through the normal path; a letter leaves the store only on success."""

from __future__ import annotations

from typing import Any

from celery import Celery

from regpilot.stores.redis_store import RedisStore


class UnknownDeadLetter(LookupError):
    """No dead letter has that id."""


def replay(store: RedisStore, celery: Celery, letter_id: str, queue: str) -> dict[str, Any]:
    """Queue a dead letter's task again with its original arguments.

    The letter stays in the store, marked as replayed; the task drops it when it succeeds, and
    puts it back with the new error when it fails again.
    """
    letter = store.dead_letter(letter_id)
    if letter is None:
        raise UnknownDeadLetter(letter_id)
    kwargs = {**letter.get("kwargs", {}), "dead_letter_id": letter_id}
    celery.send_task(
        letter["task"],
        args=letter.get("args", []),
        kwargs=kwargs,
        queue=queue,
        retry=False,
    )
    store.mark_replayed(letter_id)
    return {"id": letter_id, "task": letter["task"], "status": "requeued"}


def replay_all(store: RedisStore, celery: Celery, queue: str) -> list[dict[str, Any]]:
    """Queue every dead letter again."""
    return [replay(store, celery, letter["id"], queue) for letter in store.dead_letters()]
