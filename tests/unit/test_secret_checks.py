"""Each configured secret, and each entry of a rotation list, is checked without showing it."""

from __future__ import annotations

import base64

import pytest

from config.settings import Settings
from regpilot.core.signatures import decode_standard_secret, sign_standard

GOOD = "whsec_" + base64.b64encode(b"k" * 24).decode()
MLFLOW = "mlflow-secret-0123456789"


def _settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("whsec_", "REGPILOT_RUN_WEBHOOK_SECRET entry 1 of 1: nothing after the whsec_ prefix"),
        ("whsec_!!!!", "REGPILOT_RUN_WEBHOOK_SECRET entry 1 of 1: not base64"),
        ("whsec_A", "REGPILOT_RUN_WEBHOOK_SECRET entry 1 of 1: not base64"),
        ("whsec_====", "REGPILOT_RUN_WEBHOOK_SECRET entry 1 of 1: nothing after"),
        (f"{GOOD},whsec_é", "REGPILOT_RUN_WEBHOOK_SECRET entry 2 of 2: not base64"),
        (f"{GOOD},,{GOOD}", "REGPILOT_RUN_WEBHOOK_SECRET entry 2 of 3: is empty"),
    ],
)
def test_a_bad_run_secret_entry_is_named_by_position_never_by_value(value, expected):
    problems = _settings(run_webhook_secret=value).secret_problems()
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert GOOD not in problems[0] and "!!!!" not in problems[0] and "é" not in problems[0]


def test_good_secrets_and_unset_or_blank_variables_have_no_problem():
    unpadded = GOOD.rstrip("=")
    settings = _settings(
        run_webhook_secret=f"{GOOD}, {unpadded}",
        mlflow_webhook_secret=f"{MLFLOW},older-secret",
        databricks_webhook_secret="  ",  # what `VAR=` in an env file gives: unset
        ops_token="correct horse battery staple 0123",  # a passphrase: spaces inside are fine
    )
    assert settings.secret_problems() == []
    assert decode_standard_secret(unpadded) == decode_standard_secret(GOOD) == b"k" * 24


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("mlflow_webhook_secret", f"{MLFLOW},", "REGPILOT_MLFLOW_WEBHOOK_SECRET entry 2 of 2"),
        ("databricks_webhook_secret", ",abc", "REGPILOT_DATABRICKS_WEBHOOK_SECRET entry 1 of 2"),
        ("databricks_jobs_token", "tok-1,tok 2", "REGPILOT_DATABRICKS_JOBS_TOKEN entry 2 of 2"),
        ("databricks_token", "dapi\u00e9", "DATABRICKS_TOKEN: holds"),
        ("ops_token", "0123456789abcdef", "REGPILOT_OPS_TOKEN: is 16 characters"),
        ("ops_token", "x" * 32 + " ", "REGPILOT_OPS_TOKEN: starts or ends with whitespace"),
        ("ops_token", "x" * 32 + "\u00e9", "REGPILOT_OPS_TOKEN: holds control or non-ASCII"),
    ],
)
def test_other_secrets_are_checked_too(field, value, expected):
    problems = _settings(**{field: value}).secret_problems()
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert value not in problems[0]


def test_the_worker_checks_only_what_it_sends():
    settings = _settings(run_webhook_secret="whsec_", databricks_token="a b")
    assert [p.split(":")[0] for p in settings.secret_problems(["databricks_token"])] == [
        "DATABRICKS_TOKEN"
    ]


def test_signing_with_a_url_safe_secret_fails_loudly_instead_of_using_another_key():
    with pytest.raises(ValueError, match="not base64"):
        sign_standard("whsec_ab-_cdef", "msg", 1, b"{}")
