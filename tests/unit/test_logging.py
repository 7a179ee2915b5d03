"""Log lines: JSON objects that parse and carry the ids bound to the context; no secrets."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from regpilot.observability.logging import bind, current_context, log_context, make_handler, unbind


@pytest.fixture()
def capture():
    """Return (logger, stream) with a JSON handler like `REGPILOT_LOG_FORMAT=json` installs."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger(f"regpilot.test.{uuid.uuid4().hex[:6]}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_one_json_object_with_the_bound_ids(capture):
    logger, stream = capture
    with log_context(delivery_id="d-1", run_id="r-1", model="m", version=3, task="t"):
        logger.info("decision.gate", extra={"verdict": "PASSED"})
        logger.warning("registry.slow")
    logger.info("outside")
    first, second, third = _lines(stream)
    for line in (first, second):
        assert line["delivery_id"] == "d-1" and line["run_id"] == "r-1"
        assert line["model"] == "m" and line["version"] == 3 and line["task"] == "t"
    assert first["event"] == "decision.gate" and first["verdict"] == "PASSED"
    assert second["level"] == "warning" and second["ts"].endswith("Z")
    assert "delivery_id" not in third and current_context() == {}


def test_what_a_call_passes_wins_over_the_context_and_contexts_nest(capture):
    logger, stream = capture
    outer = bind(delivery_id="outer", model="a")
    inner = bind(model="b", ignored_field="never logged")
    logger.info("one", extra={"model": "explicit"})
    logger.info("two")
    unbind(inner)
    logger.info("three")
    unbind(outer)
    one, two, three = _lines(stream)
    assert one["model"] == "explicit" and two["model"] == "b" and three["model"] == "a"
    assert {one["delivery_id"], two["delivery_id"], three["delivery_id"]} == {"outer"}
    assert "ignored_field" not in two


def test_a_webhook_event_type_does_not_replace_the_line_name(capture):
    logger, stream = capture
    logger.info("webhook.queued", extra={"event": "run.completed", "source": "runs"})
    (line,) = _lines(stream)
    assert line["event"] == "webhook.queued" and line["webhook_event"] == "run.completed"


def test_secrets_and_signatures_are_redacted(capture):
    logger, stream = capture
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    logger.error("oops %s", secret, extra={"error": f"bad {signature}"})
    text = stream.getvalue()
    assert secret not in text and signature not in text and "[redacted]" in text
    json.loads(text)


def test_the_default_text_format_is_human_readable_with_the_same_fields():
    stream = io.StringIO()
    logger = logging.getLogger("regpilot.test.text")
    handler = make_handler("text", stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(delivery_id="d-9", model="m"):
            logger.warning("webhook.duplicate")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert "webhook.duplicate" in line and "delivery_id=d-9" in line and "model=m" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_metric_that_cannot_be_written_never_fails_the_decision(monkeypatch, caplog):
    from regpilot.observability import metrics

    class Broken:
        def labels(self, **_labels):
            raise FileNotFoundError("prometheus multiprocess directory is gone")

    monkeypatch.setattr(metrics, "GATE_VERDICTS", Broken())
    with caplog.at_level("WARNING", logger="regpilot.metrics"):
        metrics.count_decision("m", "gate", {"verdict": "PASSED"})
    assert "metrics.update_failed" in caplog.text
