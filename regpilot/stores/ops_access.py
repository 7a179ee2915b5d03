"""Ops page sessions and the wrong-token counter, kept in Redis under the store's key prefix.

A session cookie holds only a random id. The record it names (expiry, CSRF token) lives in
Redis, so logout revokes it everywhere and a copied cookie dies with it; nothing in the cookie
is derived from the ops token, so a leaked cookie gives nothing to guess the token offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

import redis

SESSION_ID_BYTES = 32
MAX_SESSION_ID_LENGTH = 128


@dataclass(frozen=True)
class OpsSession:
    """One logged-in ops page session."""

    session_id: str
    csrf: str
    expires_at: float


class OpsSessions:
    """Start, find and revoke ops page sessions."""

    def __init__(self, client: redis.Redis, prefix: str, lifetime_seconds: int) -> None:
        self.client = client
        self.prefix = prefix
        self.lifetime = lifetime_seconds

    def _key(self, session_id: str) -> str:
        # Keyed by a hash of the id: reading Redis (a dump, MONITOR) does not yield live cookies.
        digest = hashlib.sha256(session_id.encode("ascii")).hexdigest()
        return f"{self.prefix}ops-session:{digest}"

    def start(self, now: float, token_fingerprint: str) -> OpsSession:
        """Create a session valid for the configured lifetime and return it.

        `token_fingerprint` names the ops token the login checked: a session started under
        another token is not found, so changing the token still signs everyone out.
        """
        session = OpsSession(
            session_id=secrets.token_urlsafe(SESSION_ID_BYTES),
            csrf=secrets.token_urlsafe(32),
            expires_at=now + self.lifetime,
        )
        record = json.dumps(
            {"csrf": session.csrf, "expires_at": session.expires_at, "token": token_fingerprint}
        )
        self.client.set(self._key(session.session_id), record, ex=self.lifetime)
        return session

    def find(self, session_id: str, now: float, token_fingerprint: str) -> OpsSession | None:
        """Return the live session a cookie names; None if unknown, revoked or expired."""
        if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH or not session_id.isascii():
            return None
        raw = self.client.get(self._key(session_id))
        if raw is None:
            return None
        record = json.loads(raw)
        expires_at = float(record["expires_at"])
        if expires_at <= now:  # Redis expires the key too; this covers clock slack between them
            return None
        if not hmac.compare_digest(str(record.get("token", "")), token_fingerprint):
            return None
        return OpsSession(session_id, str(record["csrf"]), expires_at)

    def revoke(self, session_id: str) -> None:
        """End a session: the cookie naming it stops working at once, wherever it was copied."""
        if session_id and len(session_id) <= MAX_SESSION_ID_LENGTH and session_id.isascii():
            self.client.delete(self._key(session_id))


class WrongTokenThrottle:
    """Count wrong ops tokens per client in a fixed window; block the client past the limit."""

    def __init__(
        self, client: redis.Redis, prefix: str, max_failures: int, window_seconds: int
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.max_failures = max_failures
        self.window = window_seconds

    def _key(self, client_id: str) -> str:
        return f"{self.prefix}ops-wrong-token:{client_id}"

    def retry_after(self, client_id: str) -> int | None:
        """Return the seconds the client must wait, or None when it may try a token now."""
        key = self._key(client_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        if count is None or int(count) < self.max_failures:
            return None
        return max(int(ttl), 1)

    def record_failure(self, client_id: str) -> int:
        """Count one wrong token and return the client's count in the current window."""
        key = self._key(client_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, 0, ex=self.window, nx=True)  # the window starts at the first failure
        pipe.incr(key)
        _, count = pipe.execute()
        return int(count)


def token_fingerprint(token: str) -> str:
    """Return a value that tells ops tokens apart without revealing them (for session records)."""
    return hmac.new(token.encode(), b"regpilot ops session token v2", hashlib.sha256).hexdigest()
