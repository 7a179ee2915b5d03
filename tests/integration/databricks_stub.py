"""A local stand-in for a Databricks workspace, answering the documented REST shapes regpilot uses.

What it serves itself (shapes from databricks-sdk 0.162 `service/jobs.py`, `service/ml.py`,
`oauth.py` and the Databricks REST reference):

- `GET /.well-known/databricks-config`, which the SDK probes when a Config is built;
- `GET /api/2.2/jobs/runs/get` (with `page_token` pages of tasks, as the SDK mixin reads them);
- `/api/2.0/mlflow/registry-webhooks/{create,list,update,test}`; `test` really POSTs a signed
  event (hex HMAC-SHA256 of the body in X-Databricks-Signature) to the webhook's URL;
- `/api/2.0/mlflow/transition-requests/{create,list,approve,reject}`; an approval moves the
  version's stage on the real MLflow server, as the workspace registry would.

Everything else is proxied to a real MLflow server, whose REST shapes are the same:
`/api/2.0/mlflow/*` is what MLflow's own Databricks stores send with tracking URI `databricks`
(DatabricksTracingRestStore) and registry URI `databricks`
(DatabricksWorkspaceModelRegistryRestStore), so MLflow's Databricks client code runs for real.
The stub checks the bearer token on everything under `/api/` except
`/api/2.0/mlflow-artifacts/*`: artifacts are the http shortcut. The MLflow server hands out
`mlflow-artifacts:/...` locations, which MLflow resolves only against an http tracking URI; the
stub rewrites them in proxied answers to `<stub>/api/2.0/mlflow-artifacts/artifacts/...`, as a
workspace hands out `dbfs:/...` locations (whose credential endpoints the stub does not serve).
`requests` logs every request.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from regpilot.cli.stack import free_port
from regpilot.core.signatures import sign_databricks

WORKSPACE_ID = "1234567890123456"
_OWN_PREFIXES = (
    "/api/2.2/jobs/",
    "/api/2.1/jobs/",
    "/api/2.0/mlflow/registry-webhooks/",
    "/api/2.0/mlflow/transition-requests/",
)

# Served without a token: artifacts (the http shortcut, see the module docstring).
_OPEN_PREFIXES = ("/api/2.0/mlflow-artifacts/",)


class StubError(Exception):
    """An error answer in the Databricks shape `{error_code, message}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class DatabricksStub:
    """The stub workspace: state the tests set up, and a log of what regpilot asked for."""

    def __init__(self, mlflow_url: str, token: str) -> None:
        self.mlflow_url = mlflow_url.rstrip("/")
        self.token = token
        self.lock = threading.Lock()
        self.job_runs: dict[int, list[dict[str, Any]]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.open_requests: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, dict[str, list[str]]]] = []
        # Every request: (method, path, whether it carried the workspace token).
        self.requests: list[tuple[str, str, bool]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    # --- state the tests set up ---------------------------------------------------------

    def add_job_run(self, run: dict[str, Any], tasks_per_page: int = 100) -> None:
        """Serve `run` from jobs/runs/get, its tasks split into pages like the real API."""
        tasks = list(run.get("tasks") or [])
        pages: list[dict[str, Any]] = []
        chunks = [tasks[i : i + tasks_per_page] for i in range(0, len(tasks), tasks_per_page)]
        for index, chunk in enumerate(chunks or [[]]):
            page = {**run, "tasks": chunk} if tasks else dict(run)
            if index + 1 < len(chunks):
                page["next_page_token"] = f"page-{index + 1}"
            pages.append(page)
        with self.lock:
            self.job_runs[int(run["run_id"])] = pages

    def add_transition_request(self, name: str, version: int, stage: str) -> dict[str, Any]:
        """Open a stage-transition request, as a user would in the workspace UI."""
        request = {
            "name": name,
            "version": str(version),
            "to_stage": stage,
            "creation_timestamp": int(time.time() * 1000),
            "user_id": "someone@example.com",
            "comment": "please",
        }
        with self.lock:
            self.open_requests.append(request)
        return request

    def fire(self, webhook_id: str, payload: dict[str, Any]) -> tuple[int, str]:
        """Deliver a registry event to a webhook as Databricks does: signed JSON POST."""
        hook = self.webhooks[webhook_id]
        body = json.dumps({"webhook_id": webhook_id, **payload}).encode()
        spec = hook["http_url_spec"]
        headers = {"Content-Type": "application/json"}
        if spec.get("secret"):
            headers["X-Databricks-Signature"] = sign_databricks(spec["secret"], body)
        request = urllib.request.Request(spec["url"], data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def requests_to(self, prefix: str) -> list[tuple[str, str, bool]]:
        """Return every request whose path starts with `prefix` (own endpoints and proxied)."""
        with self.lock:
            return [request for request in self.requests if request[1].startswith(prefix)]

    def calls_to(self, path: str) -> list[tuple[str, str, dict[str, list[str]]]]:
        """Return the requests regpilot made to one of the stub's own endpoints."""
        with self.lock:
            return [call for call in self.calls if call[1] == path]

    # --- the endpoints ------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        """Answer one of the stub's own endpoints, or raise StubError."""
        with self.lock:
            self.calls.append((method, path, query))
        route = (method, path.replace("/api/2.1/", "/api/2.2/"))
        handlers = {
            ("GET", "/api/2.2/jobs/runs/get"): self._get_run,
            ("POST", "/api/2.0/mlflow/registry-webhooks/create"): self._create_webhook,
            ("GET", "/api/2.0/mlflow/registry-webhooks/list"): self._list_webhooks,
            ("PATCH", "/api/2.0/mlflow/registry-webhooks/update"): self._update_webhook,
            ("POST", "/api/2.0/mlflow/registry-webhooks/test"): self._test_webhook,
            ("POST", "/api/2.0/mlflow/transition-requests/create"): self._create_request,
            ("GET", "/api/2.0/mlflow/transition-requests/list"): self._list_requests,
            ("POST", "/api/2.0/mlflow/transition-requests/approve"): self._approve,
            ("POST", "/api/2.0/mlflow/transition-requests/reject"): self._reject,
        }
        handler = handlers.get(route)
        if handler is None:
            raise StubError(404, "ENDPOINT_NOT_FOUND", f"no endpoint {method} {path}")
        return handler(query, body)

    def _get_run(self, query: dict[str, list[str]], body: Any) -> Any:
        run_id = int(query.get("run_id", ["0"])[0])
        token = query.get("page_token", [None])[0]
        with self.lock:
            pages = self.job_runs.get(run_id)
        if pages is None:
            raise StubError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        index = int(token.split("-")[1]) if token else 0
        return pages[index]

    def _public(self, hook: dict[str, Any]) -> dict[str, Any]:
        spec = {k: v for k, v in hook["http_url_spec"].items() if k != "secret"}
        return {**hook, "http_url_spec": spec}

    def _create_webhook(self, query: dict[str, list[str]], body: Any) -> Any:
        events = body.get("events") or []
        spec = body.get("http_url_spec") or {}
        if not events or not spec.get("url"):
            raise StubError(400, "INVALID_PARAMETER_VALUE", "events and http_url_spec.url needed")
        if "REGISTERED_MODEL_CREATED" in events and body.get("model_name"):
            raise StubError(
                400,
                "INVALID_PARAMETER_VALUE",
                "REGISTERED_MODEL_CREATED is only allowed on registry-wide webhooks",
            )
        now = int(time.time() * 1000)
        hook = {
            "id": uuid.uuid4().hex,
            "events": list(events),
            "http_url_spec": dict(spec),
            "status": body.get("status", "ACTIVE"),
            "description": body.get("description"),
            "creation_timestamp": now,
            "last_updated_timestamp": now,
        }
        if body.get("model_name"):
            hook["model_name"] = body["model_name"]
        with self.lock:
            self.webhooks[hook["id"]] = hook
        return {"webhook": self._public(hook)}

    def _list_webhooks(self, query: dict[str, list[str]], body: Any) -> Any:
        model = query.get("model_name", [None])[0]
        with self.lock:
            hooks = [
                h for h in self.webhooks.values() if model is None or h.get("model_name") == model
            ]
        return {"webhooks": [self._public(h) for h in hooks]}

    def _update_webhook(self, query: dict[str, list[str]], body: Any) -> Any:
        with self.lock:
            hook = self.webhooks.get(body.get("id", ""))
            if hook is None:
                raise StubError(404, "RESOURCE_DOES_NOT_EXIST", "no such webhook")
            for key in ("events", "status", "description"):
                if key in body:
                    hook[key] = body[key]
            if "http_url_spec" in body:
                hook["http_url_spec"] = dict(body["http_url_spec"])
            hook["last_updated_timestamp"] = int(time.time() * 1000)
        return {}

    def _test_webhook(self, query: dict[str, list[str]], body: Any) -> Any:
        hook = self.webhooks.get(body.get("id", ""))
        if hook is None:
            raise StubError(404, "RESOURCE_DOES_NOT_EXIST", "no such webhook")
        event = body.get("event") or hook["events"][0]
        payload = {
            "event": event,
            "event_timestamp": int(time.time() * 1000),
            "model_name": hook.get("model_name") or "Test_Model",
            "version": "1",
            "text": f"Test event {event}.",
        }
        status, text = self.fire(hook["id"], payload)
        return {"status_code": status, "body": text}

    def _create_request(self, query: dict[str, list[str]], body: Any) -> Any:
        request = self.add_transition_request(body["name"], int(body["version"]), body["stage"])
        return {"request": request}

    def _list_requests(self, query: dict[str, list[str]], body: Any) -> Any:
        name, version = query.get("name", [""])[0], query.get("version", [""])[0]
        with self.lock:
            found = [r for r in self.open_requests if r["name"] == name and r["version"] == version]
        return {"requests": found}

    def _resolve(self, body: Any, action: str) -> dict[str, Any]:
        with self.lock:
            for request in self.open_requests:
                if (request["name"], request["version"], request["to_stage"]) == (
                    body.get("name"),
                    str(body.get("version")),
                    body.get("stage"),
                ):
                    self.open_requests.remove(request)
                    self.actions.append({"action": action, **body})
                    return request
        raise StubError(
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"no open transition request for {body.get('name')} v{body.get('version')} "
            f"to {body.get('stage')}",
        )

    def _approve(self, query: dict[str, list[str]], body: Any) -> Any:
        request = self._resolve(body, "approve")
        proxy_json(
            self.mlflow_url,
            "/api/2.0/mlflow/model-versions/transition-stage",
            {
                "name": body["name"],
                "version": str(body["version"]),
                "stage": body["stage"],
                "archive_existing_versions": bool(body.get("archive_existing_versions")),
            },
        )
        return {"activity": _activity("APPROVED_REQUEST", request, body)}

    def _reject(self, query: dict[str, list[str]], body: Any) -> Any:
        request = self._resolve(body, "reject")
        return {"activity": _activity("REJECTED_REQUEST", request, body)}


def _activity(kind: str, request: dict[str, Any], body: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "activity_type": kind,
        "to_stage": request["to_stage"],
        "comment": body.get("comment"),
        "creation_timestamp": int(time.time() * 1000),
    }


def proxy_json(base: str, path: str, body: dict[str, Any]) -> Any:
    """POST JSON to the MLflow server and return its JSON answer."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def _handler_for(stub: DatabricksStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: pytest shows failures, not access logs

        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            raw = self._body()
            authorized = self.headers.get("Authorization") == f"Bearer {stub.token}"
            with stub.lock:
                stub.requests.append((self.command, parts.path, authorized))
            if parts.path == "/.well-known/databricks-config":
                self._json(200, {"workspace_id": WORKSPACE_ID, "cloud": "AWS"})
                return
            needs_token = parts.path.startswith("/api/") and not parts.path.startswith(
                _OPEN_PREFIXES
            )
            if needs_token and not authorized:
                self._json(401, {"error_code": "UNAUTHENTICATED", "message": "bad token"})
                return
            if not parts.path.startswith(_OWN_PREFIXES):
                self._proxy(raw)
                return
            try:
                body = json.loads(raw) if raw else {}
                self._json(200, stub.answer(self.command, parts.path, parse_qs(parts.query), body))
            except StubError as exc:
                self._json(exc.status, {"error_code": exc.code, "message": exc.message})

        def _proxy(self, raw: bytes) -> None:
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in {"content-type", "accept", "user-agent"}
            }
            request = urllib.request.Request(
                stub.mlflow_url + self.path,
                data=raw if self.command in {"POST", "PUT", "PATCH"} else None,
                headers=headers,
                method=self.command,
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    payload = response.read()
                    status = response.status
                    content_type = response.headers.get("Content-Type", "application/json")
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                status = exc.code
                content_type = exc.headers.get("Content-Type", "application/json")
            if content_type.startswith("application/json"):
                served_here = f'"{stub.url}/api/2.0/mlflow-artifacts/artifacts/'.encode()
                payload = payload.replace(b'"mlflow-artifacts:/', served_here)
            self._send(status, payload, content_type)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    return Handler
