"""The ops surface under attack: forged writes, copied cookies, token guessing, framing, odd ids.

Each test reproduces a failure from issue 11 against the real Flask app and the real Redis
(shipped defaults: 8 h sessions, 10 wrong tokens per 15 minutes per client), then shows the fix.
The browser tests run Debian's Chromium: a page served from another local port (same site,
other origin) submits forms to the ops API with the victim's session cookie.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from config.settings import Settings
from handlers import create_app
from handlers.app import ConfigurationError
from regpilot.cli.stack import free_port
from regpilot.observability.logging import JsonFormatter
from regpilot.stores.redis_store import RedisStore
from tests.conftest import ThreadedReceiver
from tests.integration.test_ops_page import CHROMIUM, CHROMIUM_ARGS
from tests.support import derive

pytestmark = pytest.mark.integration

SAME_ORIGIN = {"Origin": "http://localhost"}
ODD_IDS = ["a/b", "100%25 sure", "with space", "ünï/cødé ✓", "../../etc", "x?y#z&notice=1"]


@pytest.fixture()
def ops_settings(settings: Settings) -> Settings:
    """Shipped ops defaults, a token of the accepted length and a queue no worker consumes."""
    return derive(
        settings,
        ops_token="ops-" + uuid.uuid4().hex,
        task_queue=f"{settings.key_prefix}ops-sec-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture()
def app(ops_settings: Settings):
    return create_app(ops_settings, configure_logging=False)


@pytest.fixture()
def store(ops_settings: Settings) -> RedisStore:
    return RedisStore.from_settings(ops_settings)


def _client(app, address: str | None = None):
    """A test client from its own address, so throttle counts of one test never hit another."""
    address = address or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _letter(store: RedisStore, letter_id: str | None = None) -> str:
    return store.add_dead_letter(
        {
            "id": letter_id or f"sec-{uuid.uuid4().hex}",
            "task": "regpilot.run_completed",
            "args": [uuid.uuid4().hex, "ops-sec"],
            "kwargs": {"source": "runs", "delivery_id": f"sec-{uuid.uuid4().hex}"},
            "error": "TransientRegistryError: MLflow was down",
            "attempts": 6,
        }
    )


def _logged_in(app, settings: Settings):
    http = _client(app)
    answer = http.post("/ops/login", data={"token": settings.ops_token.get_secret_value()})
    assert answer.status_code == 303
    page = http.get("/ops/").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    return http, csrf.group(1)


def _cookie(http) -> str:
    cookie = http.get_cookie("regpilot_ops", path="/ops")
    assert cookie is not None
    return cookie.value


# --- the cookie alone never changes state ------------------------------------------------------


def test_a_cross_site_retry_all_with_the_session_cookie_is_refused(app, ops_settings, store):
    letter = _letter(store)
    http, csrf = _logged_in(app, ops_settings)
    # Issue 11: a page on another port of the same host posted this and got 202.
    attack = {"Origin": "http://localhost:9999"}
    forged = http.post("/ops/dead-letters/retry-all", headers=attack)
    assert forged.status_code == 403 and "form token" in forged.json["reason"]
    # Even with the CSRF token (it cannot read it, but say it leaked) the origin is wrong.
    leaked = http.post("/ops/dead-letters/retry-all", headers={**attack, "X-CSRF-Token": csrf})
    assert leaked.status_code == 403 and "cross-origin" in leaked.json["reason"]
    no_origin = http.post("/ops/dead-letters/retry-all", headers={"X-CSRF-Token": csrf})
    assert no_origin.status_code == 403 and "Origin or Referer" in no_origin.json["reason"]
    other_referer = {"Referer": "http://localhost:9999/attack.html", "X-CSRF-Token": csrf}
    assert http.post("/ops/dead-letters/retry-all", headers=other_referer).status_code == 403
    assert store.dead_letter(letter)["replays"] == 0
    # The page's own origin with its token works; so does a Referer from the page.
    own = http.post(
        f"/ops/dead-letters/{letter}/retry", headers={**SAME_ORIGIN, "X-CSRF-Token": csrf}
    )
    assert own.status_code == 202
    referer = {"Referer": "http://localhost/ops/", "X-CSRF-Token": csrf}
    assert http.post(f"/ops/dead-letters/{letter}/retry", headers=referer).status_code == 202
    assert store.dead_letter(letter)["replays"] == 2


def test_delete_with_only_the_cookie_is_refused(app, ops_settings, store):
    letter = _letter(store)
    http, csrf = _logged_in(app, ops_settings)
    # Issue 11: with the cookie, DELETE of a dead letter returned 200.
    refused = http.delete(f"/ops/dead-letters/{letter}")
    assert refused.status_code == 403
    assert store.dead_letter(letter) is not None
    dropped = http.delete(
        f"/ops/dead-letters/{letter}", headers={**SAME_ORIGIN, "X-CSRF-Token": csrf}
    )
    assert dropped.status_code == 200 and store.dead_letter(letter) is None


def test_the_bearer_token_alone_may_write(app, ops_settings, store):
    letter = _letter(store)
    bearer = {"Authorization": f"Bearer {ops_settings.ops_token.get_secret_value()}"}
    http = _client(app)
    assert http.delete(f"/ops/dead-letters/{letter}", headers=bearer).status_code == 200


# --- server-side sessions -----------------------------------------------------------------------


def test_logout_revokes_the_session_even_for_a_copied_cookie(app, ops_settings, store):
    http, csrf = _logged_in(app, ops_settings)
    stolen = _client(app)
    stolen.set_cookie("regpilot_ops", _cookie(http), path="/ops")
    assert stolen.get("/ops/events").status_code == 200
    assert http.post("/ops/logout", data={"csrf": csrf}, headers=SAME_ORIGIN).status_code == 303
    # Issue 11: the copied cookie kept working for 8 hours.
    assert stolen.get("/ops/events").status_code == 401
    assert stolen.get("/ops/").status_code == 303


def test_the_cookie_is_a_random_id_naming_a_redis_record(app, ops_settings, store):
    http, csrf = _logged_in(app, ops_settings)
    value = _cookie(http)
    token = ops_settings.ops_token.get_secret_value()
    assert token not in value and "." not in value  # no Flask-signed payload to attack offline
    key = f"{ops_settings.key_prefix}ops-session:{hashlib.sha256(value.encode()).hexdigest()}"
    client = redis_lib.Redis.from_url(ops_settings.redis_url)
    ttl = client.ttl(key)
    assert 8 * 3600 - 60 < ttl <= 8 * 3600  # the shipped lifetime
    assert csrf in client.get(key).decode()
    client.delete(key)  # an operator ending every session (or Redis losing them) logs out
    assert http.get("/ops/events").status_code == 401
    second, _ = _logged_in(app, ops_settings)
    assert _cookie(second) != value


def test_a_login_sets_the_cookie_flags_and_secure_behind_a_trusted_proxy(ops_settings):
    token = ops_settings.ops_token.get_secret_value()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ops.example.com"}
    direct = _client(create_app(ops_settings, configure_logging=False))
    cookie = direct.post("/ops/login", data={"token": token}, headers=proxied).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ops" in cookie
    assert "Secure" not in cookie  # headers from an untrusted peer are ignored
    assert "Max-Age=28800" in cookie
    trusting = create_app(derive(ops_settings, trust_proxy=True), configure_logging=False)
    http = _client(trusting)
    answer = http.post("/ops/login", data={"token": token}, headers=proxied)
    assert "Secure" in answer.headers["Set-Cookie"]
    csrf = re.search(
        r'name="csrf" value="([^"]+)"', http.get("/ops/", headers=proxied).get_data(as_text=True)
    ).group(1)
    # The origin check compares with the origin the browser used, as the proxy reports it.
    same = {**proxied, "Origin": "https://ops.example.com", "X-CSRF-Token": csrf}
    assert http.post("/ops/dead-letters/retry-all", headers=same).status_code == 202
    cross = {**proxied, "Origin": "https://evil.example.com", "X-CSRF-Token": csrf}
    assert http.post("/ops/dead-letters/retry-all", headers=cross).status_code == 403


# --- tokens ----------------------------------------------------------------------------------


def test_a_short_ops_token_refuses_to_start_without_showing_it(settings):
    for short in ("x", "correct horse", "a" * 31):
        with pytest.raises(ConfigurationError) as refused:
            create_app(derive(settings, ops_token=short), configure_logging=False)
        assert "REGPILOT_OPS_TOKEN" in str(refused.value) and short not in str(refused.value)
    create_app(derive(settings, ops_token="a" * 32), configure_logging=False)


def test_wrong_tokens_are_throttled_per_client_and_logged(app, ops_settings, caplog):
    caplog.set_level(logging.WARNING, logger="regpilot.ops")
    token = ops_settings.ops_token.get_secret_value()
    guesser = _client(app)
    # Issue 11: 30 wrong tokens in 0.26 s, none refused. Shipped limit: 10 per 15 minutes.
    answers = [
        guesser.get("/ops/events", headers={"Authorization": f"Bearer guess-{n}"}).status_code
        for n in range(10)
    ]
    assert answers == [401] * 10
    throttled = guesser.get("/ops/events", headers={"Authorization": f"Bearer {token}"})
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 900
    login = guesser.post("/ops/login", data={"token": token})
    assert login.status_code == 429 and "Retry-After" in login.headers
    failed = [r for r in caplog.records if r.getMessage() == "ops.login_failed"]
    assert len(failed) == 10 and all(token not in r.__dict__.values() for r in failed)
    assert {getattr(r, "client", None) for r in failed} == {guesser.environ_base["REMOTE_ADDR"]}
    line = json.loads(JsonFormatter().format(failed[-1]))
    assert line["client"] == guesser.environ_base["REMOTE_ADDR"] and line["failures"] == 10
    assert line["source"] == "bearer"
    # Another client is not affected.
    other = _client(app)
    assert other.get("/ops/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_login_form_counts_wrong_tokens_too(app, ops_settings):
    guesser = _client(app)
    for n in range(10):
        assert guesser.post("/ops/login", data={"token": f"guess-{n}"}).status_code == 401
    answer = guesser.post("/ops/login", data={"token": ops_settings.ops_token.get_secret_value()})
    assert answer.status_code == 429 and "Try again in" in answer.get_data(as_text=True)


# --- headers, forms, ids -------------------------------------------------------------------------


def test_the_page_and_api_send_security_headers(app, ops_settings):
    http, _ = _logged_in(app, ops_settings)
    for path in ("/ops/", "/ops/login", "/ops/events"):
        headers = http.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert headers["Referrer-Policy"] == "same-origin"
    html = http.get("/ops/").get_data(as_text=True)
    assert "<style" not in html and "<script" not in html and "style=" not in html
    assert http.get("/ops/static/ops.css").status_code == 200


@pytest.mark.parametrize(
    ("data", "headers", "status", "reason"),
    [
        ({"csrf": "ünïcode", "letter": "x"}, {}, 400, "must be ASCII"),
        ({"csrf": ["a", "b"], "letter": "x"}, {}, 400, "more than once"),
        ({"csrf": "CSRF", "letter": ""}, {}, 400, "missing form field 'letter'"),
        ({"csrf": "CSRF"}, {}, 400, "missing form field 'letter'"),
        ({"csrf": "CSRF", "letter": "x" * 5000}, {}, 400, "longer than"),
        ({}, {}, 403, "form token"),
    ],
)
def test_malformed_page_forms_are_400_with_a_reason(
    app, ops_settings, data, headers, status, reason
):
    http, csrf = _logged_in(app, ops_settings)
    data = {k: (csrf if v == "CSRF" else v) for k, v in data.items()}
    for path in ("/ops/retry", "/ops/drop"):
        answer = http.post(path, data=data, headers={**SAME_ORIGIN, **headers})
        assert answer.status_code == status and reason in answer.json["reason"], (path, answer.json)


def test_a_csrf_file_or_a_json_body_is_400(app, ops_settings):
    import io

    http, csrf = _logged_in(app, ops_settings)
    as_file = http.post(
        "/ops/drop",
        data={"csrf": (io.BytesIO(csrf.encode()), "csrf.txt"), "letter": "x"},
        headers=SAME_ORIGIN,
        content_type="multipart/form-data",
    )
    assert as_file.status_code == 400 and "not a file" in as_file.json["reason"]
    as_json = http.post("/ops/drop", json={"csrf": csrf, "letter": "x"}, headers=SAME_ORIGIN)
    assert as_json.status_code in (400, 403)
    assert http.post("/ops/login", data={}).status_code == 400


@pytest.mark.parametrize("letter_id", ODD_IDS)
def test_any_dead_letter_id_can_be_retried_and_dropped_from_the_page(
    app, ops_settings, store, letter_id
):
    letter_id = f"{letter_id}-{uuid.uuid4().hex[:6]}"
    _letter(store, letter_id)
    http, csrf = _logged_in(app, ops_settings)
    page = http.get("/ops/").get_data(as_text=True)
    assert 'name="letter"' in page
    retried = http.post("/ops/retry", data={"csrf": csrf, "letter": letter_id}, headers=SAME_ORIGIN)
    assert retried.status_code == 303 and "notice=requeued" in retried.headers["Location"]
    assert store.dead_letter(letter_id)["replays"] == 1
    # The JSON API takes the id in the path, quoted.
    bearer = {"Authorization": f"Bearer {ops_settings.ops_token.get_secret_value()}"}
    quoted = urllib.parse.quote(letter_id, safe="/")
    assert http.get(f"/ops/dead-letters/{quoted}", headers=bearer).json["dead_letter"]["id"] == (
        letter_id
    )
    dropped = http.post("/ops/drop", data={"csrf": csrf, "letter": letter_id}, headers=SAME_ORIGIN)
    assert dropped.status_code == 303 and "notice=dropped" in dropped.headers["Location"]
    assert store.dead_letter(letter_id) is None


# --- in a real browser ---------------------------------------------------------------------------


@pytest.fixture()
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class AttackSite:
    """Another origin on the same host (same site: the SameSite=Strict cookie still goes)."""

    def __init__(self, pages: dict[str, str]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _log_in_with_chromium(page, receiver: ThreadedReceiver, token: str) -> None:
    page.goto(f"{receiver.url}/ops/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{receiver.url}/ops/")


def test_an_attack_page_on_another_port_cannot_use_the_victims_session(
    ops_settings, store, browser
):
    letter = _letter(store)
    receiver = ThreadedReceiver(ops_settings)
    target = f"{receiver.url}/ops/dead-letters/retry-all"
    attack = AttackSite(
        {
            "/retry-all.html": f"""<!doctype html><form id=f method=post action="{target}">
                <input name=csrf value=guessed></form><script>f.submit()</script>""",
            "/page-form.html": f"""<!doctype html><form id=f method=post
                action="{receiver.url}/ops/drop"><input name=letter value="{letter}"></form>
                <script>f.submit()</script>""",
            "/fetch.html": f"""<!doctype html><script>
                fetch("{receiver.url}/ops/dead-letters/{letter}", {{method: "DELETE",
                  credentials: "include"}}).then(r => document.title = "status " + r.status,
                  e => document.title = "blocked");</script>""",
            "/frame.html": f"""<!doctype html><iframe id=f src="{receiver.url}/ops/"></iframe>""",
        }
    )
    try:
        page = browser.new_page()
        _log_in_with_chromium(page, receiver, ops_settings.ops_token.get_secret_value())
        assert page.context.cookies()[0]["name"] == "regpilot_ops"

        page.goto(f"{attack.url}/retry-all.html")
        page.wait_for_url(target)
        body = page.locator("body").inner_text()
        # Issue 11: this answered 202 and queued every dead letter again.
        assert '"reason"' in body and ("form token" in body or "cross-origin" in body), body

        page.goto(f"{attack.url}/page-form.html")
        page.wait_for_url(f"{receiver.url}/ops/drop")
        assert "form token" in page.locator("body").inner_text()

        page.goto(f"{attack.url}/fetch.html")
        page.wait_for_function("document.title !== ''")
        assert page.title() in ("blocked", "status 403")

        page.goto(f"{attack.url}/frame.html")
        page.wait_for_timeout(500)
        frame = page.frame_locator("#f")
        assert frame.locator("#dead-letters").count() == 0  # frame-ancestors 'none' / DENY

        shown = store.dead_letter(letter)
        assert shown is not None and shown["replays"] == 0

        # The victim's own page still works: its forms carry the token and its own Origin.
        page.goto(f"{receiver.url}/ops/")
        row = page.locator(f'tr[data-letter="{letter}"]')
        row.get_by_role("button", name="Retry").click()
        page.wait_for_url(re.compile(r".*notice=requeued.*"))
        assert store.dead_letter(letter)["replays"] == 1
    finally:
        attack.stop()
        receiver.stop()


def test_odd_ids_retry_and_drop_from_the_page_in_chromium(ops_settings, store, browser):
    ids = [f"{odd}-{uuid.uuid4().hex[:4]}" for odd in ODD_IDS]
    for letter_id in ids:
        _letter(store, letter_id)
    receiver = ThreadedReceiver(ops_settings)
    violations: list[str] = []
    try:
        page = browser.new_page()
        page.on(
            "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
        )
        _log_in_with_chromium(page, receiver, ops_settings.ops_token.get_secret_value())
        # The stylesheet loads under the CSP (a file, not inline).
        color = page.eval_on_selector(
            "button[type=submit]", "b => getComputedStyle(b).borderTopStyle"
        )
        assert color == "solid"
        for letter_id in ids:
            row = page.locator("tr[data-letter]").filter(has_text=letter_id)
            assert row.count() == 1, letter_id
            row.get_by_role("button", name="Retry").click()
            page.wait_for_url(re.compile(r".*notice=requeued.*"))
            assert store.dead_letter(letter_id)["replays"] == 1, letter_id
            assert letter_id in page.locator("#notice").inner_text()
            row = page.locator("tr[data-letter]").filter(has_text=letter_id)
            row.locator("summary").click()
            row.get_by_role("button", name="Drop for good").click()
            page.wait_for_url(re.compile(r".*notice=dropped.*"))
            assert store.dead_letter(letter_id) is None, letter_id
        assert violations == []
    finally:
        receiver.stop()


def test_the_issues_non_ascii_csrf_and_slash_id_on_the_old_form_url(app, ops_settings, store):
    http, csrf = _logged_in(app, ops_settings)
    # Issue 11: a non-ASCII CSRF field gave a 500 here.
    answer = http.post("/ops/retry/some-letter", data={"csrf": "ünïcode"}, headers=SAME_ORIGIN)
    assert answer.status_code == 400 and "ASCII" in answer.json["reason"]
    # Issue 11: an id with "/" gave a raw JSON 404 on the page's retry URL.
    letter_id = f"runs/{uuid.uuid4().hex}"
    _letter(store, letter_id)
    retried = http.post(f"/ops/retry/{letter_id}", data={"csrf": csrf}, headers=SAME_ORIGIN)
    assert retried.status_code == 303 and "notice=requeued" in retried.headers["Location"]
    assert store.dead_letter(letter_id)["replays"] == 1


def test_changing_the_token_signs_everyone_out(app, ops_settings):
    http, _ = _logged_in(app, ops_settings)
    rotated = create_app(
        derive(ops_settings, ops_token="new-" + uuid.uuid4().hex), configure_logging=False
    )
    copied = _client(rotated)
    copied.set_cookie("regpilot_ops", _cookie(http), path="/ops")
    assert copied.get("/ops/events").status_code == 401
    assert http.get("/ops/events").status_code == 200  # the replica on the old token still knows it


def test_redis_down_is_503_with_a_reason_not_500(ops_settings):
    # Sessions and the wrong-token counter live in Redis: without it nothing can be checked.
    down = derive(ops_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    http = _client(create_app(down, configure_logging=False))
    token = ops_settings.ops_token.get_secret_value()
    answers = [
        http.get("/ops/events", headers={"Authorization": f"Bearer {token}"}),
        http.post("/ops/login", data={"token": token}),
    ]
    http.set_cookie("regpilot_ops", "some-session-id", path="/ops")
    answers.append(http.get("/ops/"))
    for answer in answers:
        assert answer.status_code == 503 and "Redis unavailable" in answer.json["reason"]
