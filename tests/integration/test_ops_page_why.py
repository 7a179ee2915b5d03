"""The ops page that answers "why": filters, search, paging, full errors, confirmations, layout.

The store's event paging runs on the real Redis; the page runs in a real receiver thread and is
driven by Debian's headless Chromium (see tests/integration/test_ops_page.py). The screenshots
the README shows are written by `test_the_ops_page_answers_why_in_chromium`.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import Settings, settings_environment
from handlers import create_app
from regpilot.cli.main import main
from regpilot.stores.redis_store import RedisStore, UnknownCursor
from tests.conftest import ThreadedReceiver
from tests.integration.test_ops_page import browser  # noqa: F401 (the Chromium fixture)
from tests.support import FAILING, PASSING, derive, train_run

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH = 1280
SAME_ORIGIN = {"Origin": "http://localhost"}


@pytest.fixture()
def ops_settings(settings: Settings) -> Settings:
    """Settings with an ops token and a queue no worker consumes (retries stay queued)."""
    return derive(
        settings,
        ops_token="ops-" + uuid.uuid4().hex,
        task_queue=f"{settings.task_queue}-why-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture()
def store(ops_settings: Settings) -> RedisStore:
    return RedisStore.from_settings(ops_settings)


def _event(store: RedisStore, model: str, n: int, outcome: str = "processed", **found) -> str:
    """Record one delivery as the receiver does, and its outcome as the worker does."""
    delivery = f"msg_{model}_{n:03d}_{uuid.uuid4().hex[:6]}"
    run_id = uuid.uuid4().hex
    summary = {"event": "run.completed", "model": model, "run_id": run_id}
    assert store.claim_delivery("runs", delivery, summary)
    if outcome != "queued":
        store.set_outcome("runs", delivery, outcome, found.pop("detail", ""), found)
    return delivery


def _letter(store: RedisStore, model: str, error: str) -> str:
    return store.add_dead_letter(
        {
            "id": f"why-{uuid.uuid4().hex}",
            "task": "regpilot.run_completed",
            "args": [uuid.uuid4().hex, model],
            "kwargs": {"source": "runs", "delivery_id": f"msg_{uuid.uuid4().hex}"},
            "error": error,
            "attempts": 6,
        }
    )


def test_event_pages_follow_a_cursor_that_new_events_do_not_shift(store):
    model = f"page-{uuid.uuid4().hex[:6]}"
    sent = [_event(store, model, n) for n in range(7)]
    mine = lambda record: record.get("model") == model  # noqa: E731
    first, cursor = store.event_page(mine, 3)
    assert [r["delivery_id"] for r in first] == sent[::-1][:3] and cursor
    _event(store, model, 99)  # arrives while the user reads page one
    second, cursor = store.event_page(mine, 3, cursor)
    assert [r["delivery_id"] for r in second] == sent[::-1][3:6]
    last, cursor = store.event_page(mine, 3, cursor)
    assert [r["delivery_id"] for r in last] == sent[:1] and cursor == ""
    with pytest.raises(UnknownCursor):
        store.event_page(mine, 3, "runs:never-recorded")


def test_bad_query_values_are_answered_400_with_a_reason(ops_settings):
    http = create_app(ops_settings, configure_logging=False).test_client()
    bearer = {"Authorization": f"Bearer {ops_settings.ops_token.get_secret_value()}"}
    cases = {
        "/ops/?page=0": "page must be a whole number",
        "/ops/?page=abc": "page must be a whole number",
        "/ops/?source=email": "source must be one of",
        "/ops/?outcome=boom": "outcome must be one of",
        "/ops/?refresh=5": "refresh must be one of",
        "/ops/?q=" + "x" * 300: "q is longer than 200",
        "/ops/?model=a%00b": "model contains control characters",
        "/ops/?sort=asc": "unknown query parameter 'sort'",
        "/ops/?before=runs:gone-from-history": "no longer holds",
        "/ops/?notice=hacked": "notice must be one of",
        "/ops/retry-all?outcome=boom": "outcome must be one of",
    }
    for path, reason in cases.items():
        answer = http.get(path, headers=bearer)
        assert answer.status_code == 400, path
        assert reason in answer.get_json()["reason"], path
    assert http.get("/ops/?page=3&source=runs&refresh=30", headers=bearer).status_code == 200


def test_retry_all_without_its_confirmation_retries_nothing(ops_settings, store):
    http = create_app(ops_settings, configure_logging=False).test_client()
    token = ops_settings.ops_token.get_secret_value()
    http.post("/ops/login", data={"token": token})
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/ops/").get_data(as_text=True))
    assert csrf
    letter = _letter(store, f"confirm-{uuid.uuid4().hex[:6]}", "RuntimeError: boom")
    unconfirmed = http.post("/ops/retry-all", data={"csrf": csrf.group(1)}, headers=SAME_ORIGIN)
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.get_json()["reason"]
    assert store.dead_letter(letter)["replays"] == 0


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width} px wide"


@pytest.mark.slow
def test_the_ops_page_answers_why_in_chromium(ops_settings, store, browser):  # noqa: F811
    model, other = f"churn-{uuid.uuid4().hex[:6]}", f"fraud-{uuid.uuid4().hex[:6]}"
    env = settings_environment(ops_settings)
    # Real verdicts for the model page: a pass registers version 1, a failure exits 1.
    for metrics, exit_code in ((PASSING, 0), (FAILING, 1)):
        done = CliRunner().invoke(
            main, ["register-model", "--run-id", train_run(metrics), "--model-name", model], env=env
        )
        assert done.exit_code == exit_code, done.output
    deliveries = [_event(store, model, n, verdict="PASSED", version=n + 1) for n in range(54)]
    failed = _event(store, model, 54, "failed", verdict="FAILED", detail="test_accuracy 0.6 < 0.9")
    ignored = _event(store, other, 1, "ignored", detail="no model name tag")
    marker = f"END-OF-ERROR-{uuid.uuid4().hex}"
    # As long as the worker stores one (2000 characters), with the part that matters at the end.
    long_error = (
        "TransientRegistryError: MLflow at http://mlflow.internal:5000 did not answer "
        "POST /api/2.0/mlflow/model-versions/create: "
        + "upstream connect error or disconnect/reset before headers; " * 28
        + f"last cause: connection refused ({marker})"
    )
    letters = [_letter(store, model, long_error), _letter(store, model, "OSError: refused")]
    bystander = _letter(store, other, "RuntimeError: not this model")

    receiver = ThreadedReceiver(ops_settings)
    violations: list[str] = []
    try:
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.on("console", lambda m: violations.append(m.text) if "Content" in m.text else None)
        page.goto(f"{receiver.url}/ops/")
        page.fill("#token", ops_settings.ops_token.get_secret_value())
        page.click("button[type=submit]")
        page.wait_for_url(f"{receiver.url}/ops/")
        _no_sideways_scroll(page)

        # A dead letter's whole error is on the page, not behind a summary.
        letter_row = page.locator(f'tr[data-letter="{letters[0]}"]')
        error_cell = letter_row.locator("td.full-error")
        assert error_cell.is_visible() and marker in error_cell.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # The top of the page (filters, dead letters, models, newest events), not all 50 events.
        page.set_viewport_size({"width": WIDTH, "height": 1500})
        page.screenshot(path=str(SCREENSHOTS / "ops-page.png"))
        page.set_viewport_size({"width": WIDTH, "height": 900})

        # Filter by model: 50 newest of its 55 events, then the next page by the cursor.
        page.fill("input[name=model]", model)
        page.click("#filters button[type=submit]")
        page.wait_for_url(re.compile(r".*model=.*"))
        rows = page.locator("#event-table tbody tr")
        assert rows.count() == 50
        assert page.locator(f'tr[data-delivery="{ignored}"]').count() == 0
        newest = page.locator(f'tr[data-delivery="{failed}"]')
        assert newest.locator("td.outcome").inner_text() == "failed"
        assert newest.locator("td.verdict").inner_text() == "FAILED"
        processed = page.locator(f'tr[data-delivery="{deliveries[-1]}"]')
        assert "v54" in processed.locator("td.model-version").inner_text()
        assert processed.locator("td.verdict").inner_text() == "PASSED"
        assert page.locator(f'tr[data-letter="{bystander}"]').count() == 0
        page.click("#older-events")
        page.wait_for_url(re.compile(r".*before=.*"))
        older = [page.locator("#event-table tbody tr").nth(i) for i in range(5)]
        assert page.locator("#event-table tbody tr").count() == 5
        assert [r.get_attribute("data-delivery") for r in older] == deliveries[:5][::-1]
        assert page.locator("#older-events").count() == 0
        page.click("#newest-events")
        page.wait_for_url(re.compile(r"^(?!.*before=).*"))

        # Filter by source and outcome, and search by a delivery id.
        page.goto(f"{receiver.url}/ops/?outcome=ignored&source=runs&q={ignored[-6:]}")
        assert page.locator("#event-table tbody tr").count() == 1
        assert page.locator(f'tr[data-delivery="{ignored}"]').count() == 1
        page.goto(f"{receiver.url}/ops/?q={letters[1][-10:]}")
        assert page.locator("#dead-letter-table tbody tr").count() == 1

        # Retry all of one model's letters, after a confirm page that lists them.
        page.goto(f"{receiver.url}/ops/?model={model}")
        page.click("#retry-all")
        page.wait_for_url(re.compile(r".*/ops/retry-all\?model=.*"))
        assert page.locator("#confirm-list li").count() == 2
        _no_sideways_scroll(page)
        page.get_by_role("button", name="Yes, retry 2").click()
        page.wait_for_url(re.compile(r".*notice=requeued_all.*"))
        assert "Retry of 2 dead letter(s) queued" in page.locator("#notice").inner_text()
        assert [store.dead_letter(i)["replays"] for i in letters] == [1, 1]
        assert store.dead_letter(bystander)["replays"] == 0

        # Drop asks first: nothing goes until "Drop for good".
        row = page.locator(f'tr[data-letter="{letters[1]}"]')
        drop = row.get_by_role("button", name="Drop for good")
        assert not drop.is_visible()
        row.locator("summary").click()
        assert "without retrying" in row.locator("details.confirm").inner_text()
        assert store.dead_letter(letters[1]) is not None
        drop.click()
        page.wait_for_url(re.compile(r".*notice=dropped.*"))
        assert store.dead_letter(letters[1]) is None

        # From the models list to the model's page: verdicts, failed checks, MLflow links.
        page.goto(f"{receiver.url}/ops/")
        page.locator(f'section[data-model="{model}"] a.model-link').click()
        page.wait_for_url(re.compile(rf".*/ops/models/{model}$"))
        assert page.locator("#verdict-table").inner_text().count("PASSED") >= 1
        assert "test_accuracy" in page.locator("#verdict-table").inner_text()
        link = page.locator('#verdict-table a[href*="/versions/1"]')
        assert link.count() == 1 and link.get_attribute("href").startswith(
            ops_settings.effective_mlflow_ui_url
        )
        run_link = page.locator('#verdict-table tr[data-version="1"] a[href*="/#/runs/"]')
        assert run_link.count() == 1
        run_id = page.locator('#verdict-table tr[data-version="1"]').get_attribute("data-run")
        assert run_link.get_attribute("href").endswith(f"/#/runs/{run_id}")
        assert page.locator('#aliases-now [data-alias="challenger"]').inner_text().endswith("v1")
        _no_sideways_scroll(page)
        page.screenshot(path=str(SCREENSHOTS / "ops-model.png"), full_page=True)
        assert violations == []
    finally:
        receiver.stop()


def test_auto_refresh_reloads_unless_someone_is_typing(ops_settings, browser):  # noqa: F811
    receiver = ThreadedReceiver(ops_settings)
    try:
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.goto(f"{receiver.url}/ops/")
        page.fill("#token", ops_settings.ops_token.get_secret_value())
        page.click("button[type=submit]")
        page.wait_for_url(f"{receiver.url}/ops/")
        page.goto(f"{receiver.url}/ops/?refresh=10")
        page.evaluate("window.sameDocument = true")
        with page.expect_navigation(timeout=20_000):  # the reload, 10 s after the load
            pass
        assert page.evaluate("window.sameDocument === undefined")  # a fresh document
        loads: list[str] = []
        page.on("load", lambda _: loads.append(page.url))
        page.focus("input[name=q]")
        page.keyboard.type("half-typed")
        page.wait_for_timeout(12_000)  # past the refresh period: still the same document
        assert loads == [] and page.input_value("input[name=q]") == "half-typed"
        page.goto(f"{receiver.url}/ops/")
        assert page.locator("script").count() == 0  # refresh off: the page runs no script
    finally:
        receiver.stop()
