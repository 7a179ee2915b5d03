"""Cheap, bounded reads of an MLflow server over plain HTTP, for the receiver.

The receiver never imports mlflow (1 s and much memory per process) and never calls MLflow while
answering a webhook; readiness and the ops page only need a health probe and a model's aliases.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


class MlflowUnavailable(Exception):
    """The MLflow server did not answer in time, or answered with a server error."""


def is_http(tracking_uri: str) -> bool:
    """Tell whether the tracking URI is an MLflow server this module can reach."""
    return urllib.parse.urlparse(tracking_uri).scheme in ("http", "https")


def _get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return bytes(response.read())


def healthy(tracking_uri: str, timeout: float) -> bool:
    """Tell whether `GET <tracking uri>/health` answers 2xx within the timeout."""
    try:
        _get(tracking_uri.rstrip("/") + "/health", timeout)
    except (OSError, ValueError):
        return False
    return True


def registered_aliases(tracking_uri: str, name: str, timeout: float) -> dict[str, int]:
    """Return a registered model's aliases (alias -> version); empty when there is no model."""
    found = _get_json(tracking_uri, "registered-models/get", {"name": name}, timeout)
    model = found.get("registered_model", {})
    return {
        str(entry["alias"]): int(entry["version"])
        for entry in model.get("aliases", [])
        if "alias" in entry and str(entry.get("version", "")).isdigit()
    }


def _get_json(tracking_uri: str, path: str, query: dict[str, str], timeout: float) -> dict:  # type: ignore[type-arg]
    """Return `GET /api/2.0/mlflow/<path>?<query>` as JSON; empty when MLflow answers 404."""
    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    try:
        return dict(json.loads(_get(url, timeout)))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise MlflowUnavailable(f"MLflow answered {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise MlflowUnavailable(str(exc)) from exc


def run_metric_names(tracking_uri: str, run_id: str, timeout: float) -> list[str] | None:
    """Return the names of the metrics a run logged, or None when there is no such run."""
    run = _get_json(tracking_uri, "runs/get", {"run_id": run_id}, timeout).get("run")
    if not run:
        return None
    return sorted({m["key"] for m in run.get("data", {}).get("metrics", []) if "key" in m})


def model_metric_names(tracking_uri: str, name: str, timeout: float, limit: int = 200) -> set[str]:
    """Return every metric name the runs behind a registered model's versions logged."""
    found = _get_json(
        tracking_uri,
        "model-versions/search",
        {"filter": f"name='{name}'", "max_results": str(limit)},
        timeout,
    )
    names: set[str] = set()
    for run_id in {v.get("run_id") for v in found.get("model_versions", []) if v.get("run_id")}:
        names.update(run_metric_names(tracking_uri, str(run_id), timeout) or [])
    return names


@dataclass
class HealthProbe:
    """MLflow's health, probed at most once per `ttl` seconds per process."""

    tracking_uri: str
    timeout: float = 1.0
    ttl: float = 15.0
    _checked_at: float = field(default=-1e9, init=False)
    _reachable: bool | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def reachable(self) -> bool | None:
        """Return whether MLflow answered lately, or None when it is not an HTTP server."""
        if not is_http(self.tracking_uri):
            return None
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl:
                return self._reachable
            self._reachable = healthy(self.tracking_uri, self.timeout)
            self._checked_at = time.monotonic()
            return self._reachable
