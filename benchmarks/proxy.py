"""A counting HTTP proxy in front of the MLflow server: how many REST calls an event costs.

The worker is pointed at the proxy; the benchmark's own set-up and checks go to MLflow
directly, so the counts are the worker's calls alone. Each call is counted by method and path
(query strings dropped), then forwarded on a kept-alive connection.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

# Ids in paths (logged models, artifact folders) would split one endpoint into many.
_IDS = re.compile(r"/m-[0-9a-f]{32}|/\d+(?=/)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


def endpoint(path: str) -> str:
    """Return a request path without its query and ids: what the counts are keyed by."""
    bare = path.split("?", 1)[0]
    if "/mlflow-artifacts/artifacts/" in bare:
        return bare.split("/mlflow-artifacts/artifacts/", 1)[0] + "/mlflow-artifacts/artifacts/…"
    return _IDS.sub(lambda m: "/{id}" if m.group(0).startswith("/m-") else "/{n}", bare)


class CountingProxy:
    """Forward every request to `upstream`, counting (method, path)."""

    def __init__(self, upstream: str) -> None:
        target = urlparse(upstream)
        self.upstream_host = target.hostname or "127.0.0.1"
        self.upstream_port = target.port or 80
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def total(self) -> int:
        """Return how many calls went through since the last reset."""
        with self.lock:
            return sum(self.counts.values())

    def snapshot(self) -> Counter[tuple[str, str]]:
        """Return a copy of the per-endpoint counts."""
        with self.lock:
            return Counter(self.counts)

    def reset(self) -> None:
        """Forget the counts."""
        with self.lock:
            self.counts.clear()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                path = endpoint(self.path)
                with proxy.lock:
                    proxy.counts[(self.command, path)] += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                for attempt in (1, 2):
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection(
                            proxy.upstream_host, proxy.upstream_port, timeout=60
                        )
                    try:
                        self.upstream.request(self.command, self.path, body=body, headers=headers)
                        response = self.upstream.getresponse()
                        payload = response.read()
                        break
                    except (http.client.HTTPException, OSError):
                        self.upstream.close()
                        self.upstream = None
                        if attempt == 2:
                            raise
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def finish(self) -> None:
                super().finish()
                if self.upstream is not None:
                    self.upstream.close()

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

        return Handler
