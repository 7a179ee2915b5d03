"""The ops page: access rules through Flask's client, and Retry end to end in real Chromium.

The browser is Debian's `chromium` (`apt-get install -y chromium chromium-driver`; .ci/run does
it when missing) driven by the `playwright` package, never a browser Playwright downloads.
"""

from __future__ import annotations

import re
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from handlers import create_app
from regpilot.cli.stack import free_port
from regpilot.stores.redis_store import RedisStore
from tests.conftest import ThreadedReceiver, WorkerProcess
from tests.support import PASSING, derive, post, run_webhook, train_run, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture()
def ops_settings(settings: Settings) -> Settings:
    """Settings with an ops token and a queue no worker consumes."""
    return derive(
        settings,
        ops_token="ops-" + uuid.uuid4().hex,
        task_queue=f"{settings.task_queue}-ops-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture()
def http(ops_settings: Settings):
    return create_app(ops_settings, configure_logging=False).test_client()


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


# What a browser sends with the page's own forms (Flask's test client serves http://localhost).
SAME_ORIGIN = {"Origin": "http://localhost"}


def _login(http, token: str):
    return http.post("/ops/login", data={"token": token})


def test_the_page_is_off_without_an_ops_token(settings):
    http = create_app(settings, configure_logging=False).test_client()
    for path in ("/ops/", "/ops/login"):
        answer = http.get(path)
        assert answer.status_code == 404 and "REGPILOT_OPS_TOKEN" in answer.json["reason"]


def test_the_page_asks_for_a_login_and_refuses_a_wrong_token(http):
    first = http.get("/ops/")
    assert first.status_code == 303 and first.headers["Location"].endswith("/ops/login")
    form = http.get("/ops/login")
    assert form.status_code == 200 and 'name="token"' in form.get_data(as_text=True)
    wrong = _login(http, "not-the-token")
    assert wrong.status_code == 401 and "not the ops token" in wrong.get_data(as_text=True)
    assert http.get("/ops/").status_code == 303
    assert http.get("/ops/events").status_code == 401


def test_a_login_opens_the_page_and_the_json_api_and_logout_closes_them(http, ops_settings):
    token = ops_settings.ops_token.get_secret_value()
    answer = _login(http, token)
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ops" in cookie
    assert token not in cookie
    page = http.get("/ops/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Dead letters" in html and "Recent events" in html and "Models" in html
    assert http.get("/ops/events").status_code == 200
    assert (
        http.post("/ops/logout", data={"csrf": _csrf(html)}, headers=SAME_ORIGIN).status_code == 303
    )
    assert http.get("/ops/").status_code == 303


def test_the_bearer_token_opens_the_page_without_a_session(http, ops_settings):
    bearer = {"Authorization": f"Bearer {ops_settings.ops_token.get_secret_value()}"}
    assert http.get("/ops/", headers=bearer).status_code == 200
    assert http.get("/ops/", headers={"Authorization": "Bearer wrong"}).status_code == 303


def test_a_retry_without_the_form_token_is_refused(http, ops_settings):
    _login(http, ops_settings.ops_token.get_secret_value())
    forged = http.post("/ops/retry/some-letter", data={})
    assert forged.status_code == 403 and "form token" in forged.json["reason"]
    unknown = http.post(
        "/ops/retry/no-such-letter",
        data={"csrf": _csrf(http.get("/ops/").get_data(as_text=True))},
        headers=SAME_ORIGIN,
    )
    assert unknown.status_code == 303 and "notice=unknown" in unknown.headers["Location"]


# --- end to end in a real browser ---------------------------------------------------------------


@pytest.fixture()
def browser() -> Iterator[object]:
    """Headless Debian Chromium under Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.slow
def test_retry_a_dead_letter_from_the_page_in_chromium(
    ops_settings, mlflow_server, browser, tmp_path_factory
):
    settings = derive(ops_settings, task_max_retries=0, mlflow_http_max_retries=0)
    store = RedisStore.from_settings(settings)
    model = f"ops-{uuid.uuid4().hex[:8]}"
    run_id = train_run(PASSING)
    delivery = f"msg_{uuid.uuid4().hex}"
    logs = tmp_path_factory.mktemp("ops-workers")

    # A real dead letter: a worker whose MLflow is a closed port fails, with no retries left.
    broken = derive(
        settings,
        mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}",
        worker_metrics_port=free_port(),
    )
    failing = WorkerProcess(broken, logs / "failing.log", concurrency=1)
    receiver = ThreadedReceiver(settings)
    try:
        body, headers = run_webhook(
            settings.run_webhook_secrets[0], run_id, model, message_id=delivery
        )
        status, _ = post(f"{receiver.url}/webhooks/runs", body, headers)
        assert status == 202
        letter = wait_until(
            lambda: next(
                (d for d in store.dead_letters() if d["kwargs"].get("delivery_id") == delivery),
                None,
            ),
            timeout=120,
            message="the dead letter",
        )
        # The worker's exporter counts it (its signals fire just after the letter is stored);
        # the receiver's gauge reads the letters from Redis.
        task = "regpilot.run_completed"
        counted = (
            ("regpilot_dead_letters_total", (("task", task),)),
            ("regpilot_tasks_total", (("outcome", "dead"), ("task", task))),
        )
        worker_url = f"http://127.0.0.1:{broken.worker_metrics_port}/metrics"

        def dead_counted() -> dict | None:
            now = _scrape(worker_url)
            return now if all(key in now for key in counted) else None

        worker_metrics = wait_until(
            dead_counted, timeout=30, message="the worker's dead-letter metrics"
        )
        assert [worker_metrics[key] for key in counted] == [1, 1]
        receiver_metrics = _scrape(f"{receiver.url}/metrics")
        assert receiver_metrics[("regpilot_dead_letters_current", ())] >= 1
    finally:
        failing.stop()

    # The fix: a worker that reaches MLflow. The retry comes from the page.
    healthy = WorkerProcess(settings, logs / "healthy.log", concurrency=1)
    try:
        page = browser.new_page()
        page.goto(f"{receiver.url}/ops/")
        assert page.url.endswith("/ops/login")
        page.fill("#token", settings.ops_token.get_secret_value())
        page.click("button[type=submit]")
        page.wait_for_url(f"{receiver.url}/ops/")

        row = page.locator(f'tr[data-letter="{letter["id"]}"]')
        assert row.count() == 1
        assert "regpilot.run_completed" in row.inner_text()
        event = page.locator(f'tr[data-delivery="{delivery}"] td.outcome')
        assert event.inner_text() == "dead"

        shots = Path(str(tmp_path_factory.getbasetemp()))
        page.screenshot(path=str(shots / "ops-page-dead-letter.png"), full_page=True)
        row.get_by_role("button", name="Retry").click()
        page.wait_for_url(re.compile(r".*notice=requeued.*"))
        assert "queued" in page.locator("#notice").inner_text()

        def succeeded() -> bool:
            page.reload()
            gone = page.locator(f'tr[data-letter="{letter["id"]}"]').count() == 0
            return gone and event.inner_text() == "processed"

        wait_until(succeeded, timeout=120, interval=1, message="the retry to succeed")
        # The worker's result reaches the event: the version it registered and the verdict.
        processed = page.locator(f'tr[data-delivery="{delivery}"]')
        assert processed.locator("td.verdict").inner_text() == "PASSED"
        assert processed.locator("td.model-version").inner_text().endswith("v1")
        challenger = page.locator(f'section[data-model="{model}"] tr[data-alias="challenger"]')
        assert challenger.inner_text().endswith("version 1")
        assert "read from MLflow" in page.locator(f'section[data-model="{model}"]').inner_text()
        page.screenshot(path=str(shots / "ops-page-retried.png"), full_page=True)
    finally:
        healthy.stop()
        receiver.stop()


def test_chromium_is_debians_own(browser):
    assert shutil.which("chromium") == CHROMIUM or Path(CHROMIUM).exists()
    assert browser.version  # launched: the executable path and flags work
