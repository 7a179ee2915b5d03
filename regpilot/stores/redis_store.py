"""Everything regpilot keeps in Redis, under one key prefix, bounded in size."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from config.settings import Settings


class UnknownCursor(Exception):
    """A page cursor names an entry the bounded event history no longer holds."""


class LockTimeout(Exception):
    """Another task holds the model's lock for longer than we are willing to wait."""


# A version's measurement on fixed rows never changes; the TTL only bounds Redis memory.
EVALUATION_TTL_SECONDS = 90 * 24 * 3600


class RedisStore:
    """Delivery claims, event history, decisions, dead letters and per-model locks."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        delivery_ttl: int = 7 * 24 * 3600,
        max_events: int = 10_000,
        max_decisions: int = 1_000,
        lock_timeout: int = 120,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.delivery_ttl = delivery_ttl
        self.max_events = max_events
        self.max_decisions = max_decisions
        self.lock_timeout = lock_timeout

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> RedisStore:
        """Build the store from settings (one connection pool per process)."""
        return cls(
            client or connect(settings.redis_url),
            settings.key_prefix,
            delivery_ttl=settings.delivery_ttl_seconds,
            max_events=settings.history_max_events,
            max_decisions=settings.decisions_max_per_model,
            lock_timeout=settings.lock_timeout_seconds,
        )

    def key(self, *parts: str) -> str:
        """Return a prefixed key."""
        return self.prefix + ":".join(parts)

    # --- deliveries and the event history ---------------------------------------------------

    def claim_delivery(
        self,
        source: str,
        delivery_id: str,
        summary: dict[str, Any],
        enqueue: tuple[str, str] | None = None,
    ) -> bool:
        """Claim a delivery id and record it in the event history; False if already claimed.

        One script, one round trip: the claim (SET NX), the history record, the index trim
        and, with `enqueue=(queue_key, message)`, an LPUSH of the task message onto its queue
        list (the receiver's fast path when the broker is this Redis: see
        regpilot/queue/broker_message.py). Nothing after the claim runs when the claim fails,
        so a duplicate queues nothing.
        """
        record = json.dumps(
            {
                **summary,
                "source": source,
                "delivery_id": delivery_id,
                "received_at": time.time(),
                "outcome": "queued",
            }
        )
        keys = [
            self.key("delivery", source, delivery_id),
            self.key("event", source, delivery_id),
            self.key("events"),
        ]
        args: list[Any] = [self.delivery_ttl, record, f"{source}:{delivery_id}", self.max_events]
        if enqueue is not None:
            queue_key, message = enqueue
            keys.append(queue_key)
            args.append(message)
        return bool(self._script("claim", _CLAIM_LUA)(keys=keys, args=args))

    def release_delivery(self, source: str, delivery_id: str) -> None:
        """Forget a claim (the enqueue failed, so the sender's retry must be accepted)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.key("delivery", source, delivery_id))
        pipe.delete(self.key("event", source, delivery_id))
        pipe.lrem(self.key("events"), 1, f"{source}:{delivery_id}")
        pipe.execute()

    def record_unqueued(self, source: str, delivery_id: str, summary: dict[str, Any]) -> None:
        """Record a delivery that was not queued (ignored, duplicate, rejected)."""
        entry_id = f"{source}:{delivery_id}:{uuid.uuid4().hex[:8]}"
        record = {
            **summary,
            "source": source,
            "delivery_id": delivery_id,
            "received_at": time.time(),
        }
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.key("event", entry_id), json.dumps(record), ex=self.delivery_ttl)
        pipe.lpush(self.key("events"), entry_id)
        pipe.ltrim(self.key("events"), 0, self.max_events - 1)
        pipe.execute()

    def set_outcome(
        self,
        source: str,
        delivery_id: str,
        outcome: str,
        detail: str = "",
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Record what the worker made of a delivery (processed, failed, dead).

        `fields` adds what the work found, e.g. the verdict and the model it concerned.
        """
        key = self.key("event", source, delivery_id)
        raw = self.client.get(key)
        record = json.loads(raw) if raw else {"source": source, "delivery_id": delivery_id}
        record.update(fields or {})
        record.update({"outcome": outcome, "detail": detail[:500], "finished_at": time.time()})
        self.client.set(key, json.dumps(record), ex=self.delivery_ttl)

    def events(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest received deliveries, newest first."""
        ids = self.client.lrange(self.key("events"), 0, max(0, limit - 1))
        if not ids:
            return []
        raws = self.client.mget([self.key("event", _s(i)) for i in ids])
        return [json.loads(r) for r in raws if r]

    def event_page(
        self,
        keep: Callable[[dict[str, Any]], bool],
        limit: int,
        before: str = "",
        chunk: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """Return up to `limit` events `keep` accepts, newest first, and the next page's cursor.

        Each record carries its history `entry`; a page starts after the entry `before` (the
        newest when empty), so events that arrive meanwhile do not shift the pages. The cursor
        is empty on the last page. Raises UnknownCursor when `before` has left the history.
        """
        index = self.key("events")
        start = 0
        if before:
            position = self.client.lpos(index, before)
            if not isinstance(position, int):  # None: trimmed away (a list only with COUNT)
                raise UnknownCursor(before)
            start = position + 1
        found: list[dict[str, Any]] = []
        while True:
            ids = [_s(i) for i in self.client.lrange(index, start, start + chunk - 1)]
            if not ids:
                return found, ""
            raws = self.client.mget([self.key("event", i) for i in ids])
            for entry, raw in zip(ids, raws, strict=True):
                if not raw:
                    continue  # expired before its index entry was trimmed
                record = {**json.loads(raw), "entry": entry}
                if not keep(record):
                    continue
                if len(found) == limit:
                    return found, found[-1]["entry"]  # one more exists: there is a next page
                found.append(record)
            start += chunk

    # --- decision records ---------------------------------------------------------------------

    def record_decision(
        self, model: str, decision: dict[str, Any], identity: str | None = None
    ) -> bool:
        """Append a decision record to the model's history (newest first, bounded).

        With an `identity` (what the decision is about, e.g. `alias:challenger:7`), the record
        is written once however often the work is redone (redelivery, reconciliation).
        Returns False when an identical decision was already recorded.
        """
        entry = json.dumps({"at": time.time(), "model": model, **decision}, default=str)
        identity_key = self.key("decided", model, identity) if identity else ""
        written = self._script("record", _RECORD_LUA)(
            keys=[self.key("decisions", model), self.key("models"), identity_key],
            args=[entry, self.max_decisions, model, self.delivery_ttl * 4],
        )
        return bool(written)

    def _script(self, name: str, source: str) -> Any:
        cache: dict[str, Any] = self.__dict__.setdefault("_scripts", {})
        if name not in cache:
            cache[name] = self.client.register_script(source)
        return cache[name]

    def decisions(self, model: str, limit: int = 50) -> list[dict[str, Any]]:
        """Return a model's decision records, newest first."""
        raws = self.client.lrange(self.key("decisions", model), 0, max(0, limit - 1))
        return [json.loads(r) for r in raws]

    def models(self) -> list[str]:
        """Return every model regpilot has decided something about."""
        return sorted(_s(m) for m in self.client.smembers(self.key("models")))

    # --- dead letters ---------------------------------------------------------------------

    def add_dead_letter(self, letter: dict[str, Any]) -> str:
        """Store a task whose retries are exhausted; return its id."""
        letter_id = letter.get("id") or uuid.uuid4().hex
        previous = self.dead_letter(str(letter_id)) or {}
        entry = json.dumps(
            {
                **letter,
                "id": letter_id,
                "dead_at": time.time(),
                "replays": previous.get("replays", 0),
            },
            default=str,
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key("dead"), letter_id, entry)
        pipe.execute()
        return str(letter_id)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Return every dead letter, oldest first."""
        letters = [json.loads(v) for v in self.client.hvals(self.key("dead"))]
        return sorted(letters, key=lambda item: item.get("dead_at", 0))

    def dead_letter_count(self) -> int:
        """Return how many dead letters wait (one HLEN, cheap enough for every scrape)."""
        return int(self.client.hlen(self.key("dead")))

    def dead_letter(self, letter_id: str) -> dict[str, Any] | None:
        """Return one dead letter."""
        raw = self.client.hget(self.key("dead"), letter_id)
        return json.loads(raw) if raw else None

    def mark_replayed(self, letter_id: str) -> None:
        """Count a replay of a dead letter (it stays until the replay succeeds)."""
        raw = self.client.hget(self.key("dead"), letter_id)
        if raw is None:
            return
        letter = json.loads(raw)
        letter["replays"] = int(letter.get("replays", 0)) + 1
        letter["replayed_at"] = time.time()
        self.client.hset(self.key("dead"), letter_id, json.dumps(letter))

    def drop_dead_letter(self, letter_id: str) -> bool:
        """Remove a dead letter; True if it existed."""
        return bool(self.client.hdel(self.key("dead"), letter_id))

    # --- beat's heartbeat ------------------------------------------------------------------

    def mark_reconciled(self, at: float | None = None) -> None:
        """Remember when a reconciliation sweep ran (beat queues one every interval)."""
        self.client.set(self.key("reconcile", "last"), repr(time.time() if at is None else at))

    def last_reconcile(self) -> float | None:
        """Return when the last reconciliation sweep ran (epoch seconds), None if never."""
        raw = self.client.get(self.key("reconcile", "last"))
        return float(raw) if raw else None

    # --- evaluation results -----------------------------------------------------------------

    def evaluation(self, model: str, subject: str, digest: str) -> dict[str, Any] | None:
        """Return a cached evaluation of `subject` (`v3`, `run:<id>:<uri>`) on a dataset digest."""
        raw = self.client.get(self.key("evaluation", model, subject, digest))
        return json.loads(raw) if raw else None

    def cache_evaluation(
        self, model: str, subjects: list[str], digest: str, result: dict[str, Any]
    ) -> None:
        """Cache an evaluation under each of its subjects (its run's model, then its version)."""
        pipe = self.client.pipeline()
        for subject in subjects:
            key = self.key("evaluation", model, subject, digest)
            pipe.set(key, json.dumps(result), ex=EVALUATION_TTL_SECONDS)
        pipe.execute()

    def dataset_digest_for(self, dataset_key: str) -> str | None:
        """Return the digest last measured for a dataset key (see workflows/evaluation.py)."""
        raw = self.client.get(self.key("dataset_digest", dataset_key))
        return _s(raw) if raw else None

    def remember_dataset_digest(self, dataset_key: str, digest: str) -> None:
        """Remember which rows (digest) a dataset key resolved to."""
        self.client.set(self.key("dataset_digest", dataset_key), digest, ex=EVALUATION_TTL_SECONDS)

    # --- per-model locks --------------------------------------------------------------------

    @contextmanager
    def model_lock(self, model: str, wait: float | None = None) -> Iterator[None]:
        """Hold the model's lock: alias moves and retention for one model never interleave.

        The lock expires after `lock_timeout`, so a worker that dies holding it cannot wedge
        the model.
        """
        lock = self.client.lock(
            self.key("lock", model),
            timeout=self.lock_timeout,
            blocking_timeout=self.lock_timeout if wait is None else wait,
        )
        if not lock.acquire():
            raise LockTimeout(f"model {model!r} is locked by another task")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired while we worked: another task may hold it now

    def ping(self) -> bool:
        """Tell whether Redis answers."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False


# KEYS: claim, event record, event index[, task queue]; ARGV: ttl, record, index entry,
# index length[, task message]. The task message is pushed where kombu's Redis transport would.
_CLAIM_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[1])
  redis.call('LPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
  if KEYS[4] then
    redis.call('LPUSH', KEYS[4], ARGV[5])
  end
  return 1
end
return 0
"""


_RECORD_LUA = """
if KEYS[3] ~= '' then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then
    return 0
  end
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('SADD', KEYS[2], ARGV[3])
return 1
"""


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str) -> redis.Redis:
    """Return a Redis client with short timeouts, so an outage answers 503 quickly."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
