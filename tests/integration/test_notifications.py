"""Notifications on the real stack: a real worker posts signed events to a real HTTP receiver.

The receiver of the notifications is a plain local HTTP server that verifies every delivery
with the `standardwebhooks` package, as a user's own service would. A worker of our own runs
with a policy naming that server (plain http is allowed to 127.0.0.1 only), on a queue of its
own, fed by a receiver of our own.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from regpilot.cli.stack import free_port
from tests.conftest import ThreadedReceiver, WorkerProcess
from tests.support import FAILING, PASSING, derive, post, run_webhook, train_run, wait_until

# One pytest process runs this module: its worker and sink (module fixtures) start once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("notify-stack")]

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "notifications.schema.json").read_text())
SECRET_VARIABLE = "REGPILOT_NOTIFY_SECRET_ITEST"
MODEL = "notify-model"
DOWN_MODEL = "notify-down-model"
ORDER = ("validation.passed", "validation.failed", "registered", "challenger.moved", "dead_letter")


class EventSink:
    """A local HTTPS-less webhook receiver that keeps every delivery it verifies."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.events: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    event = sink.verifier.verify(body, dict(self.headers.items()))
                except Exception as exc:  # the library's WebhookVerificationError
                    sink.rejected.append(str(exc))
                    self.send_response(400)
                else:
                    sink.events.append(
                        {"event": event, "headers": {k.lower(): v for k, v in self.headers.items()}}
                    )
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/regpilot"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, model: str, delivery_id: str) -> list[dict[str, Any]]:
        """Return the verified events of the work one delivery triggered, by type."""
        found = [
            e["event"]
            for e in self.events
            if e["event"]["data"]["model"] == model
            and e["event"]["data"]["trigger"].get("delivery_id") == delivery_id
        ]
        return sorted(found, key=lambda event: ORDER.index(event["type"]))

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def notify_secret() -> Iterator[str]:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    previous = os.environ.get(SECRET_VARIABLE)
    os.environ[SECRET_VARIABLE] = secret  # the worker we start inherits it
    yield secret
    if previous is None:
        os.environ.pop(SECRET_VARIABLE, None)
    else:
        os.environ[SECRET_VARIABLE] = previous


@pytest.fixture(scope="module")
def sink(notify_secret: str) -> Iterator[EventSink]:
    server = EventSink(notify_secret)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def notify_stack(settings, sink, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A worker and a receiver whose policy sends decisions to the sink."""
    closed_port = free_port()  # nothing listens there: the destination is down
    policy = tmp_path_factory.mktemp("notify-policy") / "policy.yaml"
    policy.write_text(
        f"""
models:
  {MODEL}:
    notifications:
      audit:
        type: webhook
        url: {sink.url}
        secret_env: {SECRET_VARIABLE}
  {DOWN_MODEL}:
    notifications:
      audit:
        type: webhook
        url: http://127.0.0.1:{closed_port}/hooks/regpilot
        secret_env: {SECRET_VARIABLE}
        events: [registered, challenger.moved]
"""
    )
    ours = derive(
        settings,
        policy_file=policy,
        task_queue=f"{settings.task_queue}-notify",
    )
    worker = WorkerProcess(ours, tmp_path_factory.mktemp("notify-worker") / "worker.log")
    receiver = ThreadedReceiver(ours)
    yield {"settings": ours, "worker": worker, "receiver": receiver}
    receiver.stop()
    worker.stop()


def _send_run(stack: dict[str, Any], run_id: str, model: str) -> str:
    message_id = f"msg_{uuid.uuid4().hex}"
    body, headers = run_webhook(
        stack["settings"].run_webhook_secrets[0], run_id, model, message_id=message_id
    )
    status, answer = post(f"{stack['receiver'].url}/webhooks/runs", body, headers)
    assert status == 202, answer
    return message_id


def _processed(store: Any, delivery_id: str) -> bool:
    return any(
        e.get("delivery_id") == delivery_id and e.get("outcome") == "processed"
        for e in store.events(200)
    )


def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_a_real_worker_delivers_signed_events_a_standardwebhooks_receiver_verifies(
    notify_stack, sink, store, client, mlflow_server
):
    run_id = train_run(PASSING)
    delivery = _send_run(notify_stack, run_id, MODEL)

    events = wait_until(
        lambda: len(sink.of(MODEL, delivery)) >= 3 and sink.of(MODEL, delivery),
        message="three verified notifications",
    )
    assert sink.rejected == []
    assert [e["type"] for e in events] == ["validation.passed", "registered", "challenger.moved"]
    for event in events:
        assert list(_validator().iter_errors(event)) == []
    version = int(events[1]["data"]["version"])
    assert client.get_model_version(MODEL, str(version)).tags["validation_status"] == "PASSED"
    experiment = client.get_run(run_id).info.experiment_id
    assert events[1]["data"]["links"] == {
        "model": f"{mlflow_server}/#/models/{MODEL}",
        "version": f"{mlflow_server}/#/models/{MODEL}/versions/{version}",
        "run": f"{mlflow_server}/#/experiments/{experiment}/runs/{run_id}",
    }
    assert events[2]["data"]["alias"] == "challenger"
    assert events[0]["data"]["trigger"] == {"source": "runs", "delivery_id": delivery}
    # webhook-id is the event id: a retried delivery can be dropped by the receiver.
    headers = [e["headers"] for e in sink.events if e["event"]["id"] == events[0]["id"]]
    assert headers[0]["webhook-id"] == events[0]["id"]

    # The same run again (a new delivery id, so the work is redone): every decision is already
    # recorded, so nothing is notified twice.
    again = _send_run(notify_stack, run_id, MODEL)
    wait_until(lambda: _processed(store, again), message="the redone work")
    time.sleep(3)  # room for any (wrong) notification task to run
    assert sink.of(MODEL, again) == []
    assert len(sink.of(MODEL, delivery)) == 3


def test_a_failed_validation_names_the_failed_checks(notify_stack, sink):
    run_id = train_run(FAILING)
    delivery = _send_run(notify_stack, run_id, MODEL)
    (event,) = wait_until(lambda: sink.of(MODEL, delivery), message="validation.failed")
    assert event["type"] == "validation.failed"
    assert event["data"]["verdict"] == "FAILED"
    assert [c["name"] for c in event["data"]["failed_checks"]] == ["test_accuracy"]
    assert event["data"]["failed_checks"][0]["actual"].startswith("0.6")
    assert list(_validator().iter_errors(event)) == []


def test_a_task_that_dead_letters_notifies_dead_letter(notify_stack, sink, store):
    import mlflow

    mlflow.set_experiment("regpilot-tests")
    run = mlflow.start_run()  # left RUNNING: the task retries, then dead-letters
    try:
        delivery = _send_run(notify_stack, run.info.run_id, MODEL)
        (event,) = wait_until(
            lambda: [e for e in sink.of(MODEL, delivery) if e["type"] == "dead_letter"],
            timeout=90,
            message="dead_letter notification",
        )
    finally:
        mlflow.end_run()
    assert event["data"]["task"] == "regpilot.run_completed"
    assert event["data"]["run_id"] == run.info.run_id
    assert "RunNotFinished" in event["data"]["error"]
    assert list(_validator().iter_errors(event)) == []


def test_a_destination_that_is_down_retries_then_dead_letters_and_the_decision_stands(
    notify_stack, store, client
):
    run_id = train_run(PASSING)
    delivery = _send_run(notify_stack, run_id, DOWN_MODEL)
    wait_until(lambda: _processed(store, delivery), message="run processed")

    def letters() -> list[dict[str, Any]]:
        return [
            letter
            for letter in store.dead_letters()
            if letter["task"] == "regpilot.notify" and letter["args"][0] == DOWN_MODEL
        ]

    # Test settings: 3 retries, backoff capped at 4 s (about 10 s); the shipped 5 retries with
    # a 300 s cap give 2+4+8+16+32 s at most (jittered), about a minute, before the letter.
    found = wait_until(lambda: len(letters()) >= 2 and letters(), timeout=90, message="letters")
    assert {letter["args"][2]["type"] for letter in found} == {"registered", "challenger.moved"}
    for letter in found:
        assert letter["attempts"] == notify_stack["settings"].task_max_retries + 1
        assert "unreachable" in letter["error"]
    (version,) = client.search_model_versions(f"name = '{DOWN_MODEL}'")
    stored = client.get_model_version(DOWN_MODEL, version.version)
    assert stored.tags["validation_status"] == "PASSED"
    assert "challenger" in stored.aliases
