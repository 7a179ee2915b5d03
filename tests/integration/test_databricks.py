"""Databricks paths against a local stub workspace whose MLflow side is the real test server.

The stub (tests/integration/databricks_stub.py) answers the documented REST shapes regpilot calls
through databricks-sdk and proxies /api/2.0/mlflow/* to the session's MLflow server. A receiver
and a real Celery worker run with Databricks enabled and `MLFLOW_TRACKING_URI=databricks`,
`DATABRICKS_HOST` = the stub: runs, experiments and logged models go through MLflow's own
Databricks store (token, host metadata probe). Which registry each test uses (MLflow's workspace
registry store, or the http shortcut where the workspace registry has no aliases) is listed in
docs/DATABRICKS.md, with what no live workspace leaves unverified.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from config.settings import Settings, settings_environment
from handlers import create_app
from handlers.app import ConfigurationError
from regpilot.cli.main import main
from regpilot.core.signatures import sign_databricks
from tests.conftest import ThreadedReceiver, WorkerProcess
from tests.integration.databricks_stub import DatabricksStub
from tests.support import FAILING, PASSING, derive, post, train_run, wait_until

# One xdist worker runs this module: its stub, receiver and Celery worker start once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("databricks")]

TOKEN = "dapi-" + uuid.uuid4().hex
JOBS_USER = "databricks-notifier"
JOBS_PASSWORD = "pw-" + uuid.uuid4().hex
JOBS_BEARER = "bearer-" + uuid.uuid4().hex
REGISTRY_SECRET = "dbx-" + uuid.uuid4().hex
JOB_RUN_TAG = "mlflow.databricks.jobRunID"
JOB_TAG = "mlflow.databricks.jobID"
# Versions made by hand below carry this tag so that MLflow's own webhook (installed by the core
# tests in the same session) ignores them: only the Databricks path acts on them here.
BY_HAND_TAGS = {"registered_by": "regpilot"}


@pytest.fixture(scope="module")
def stub(mlflow_server: str) -> Iterator[DatabricksStub]:
    workspace = DatabricksStub(mlflow_server, TOKEN)
    yield workspace
    workspace.stop()


@pytest.fixture(scope="module")
def dbx_settings(settings: Settings, stub: DatabricksStub, mlflow_server: str) -> Settings:
    return derive(
        settings,
        # MLflow's Databricks tracking store, against the stub: DATABRICKS_HOST + _TOKEN below.
        mlflow_tracking_uri="databricks",
        # The http shortcut for the registry: aliases exist neither in the workspace registry
        # (see the workspace tests below) nor anywhere the stub could stand in for Unity Catalog.
        mlflow_registry_uri=mlflow_server,
        task_queue=settings.task_queue + "-databricks",
        databricks_enabled=True,
        databricks_host=stub.url,
        databricks_token=TOKEN,
        databricks_webhook_secret=REGISTRY_SECRET,
        databricks_jobs_username=JOBS_USER,
        databricks_jobs_password=JOBS_PASSWORD,
        databricks_jobs_token=JOBS_BEARER,
        databricks_http_timeout=10,
    )


@pytest.fixture(scope="module")
def dbx_receiver(dbx_settings: Settings) -> Iterator[ThreadedReceiver]:
    server = ThreadedReceiver(dbx_settings)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dbx_worker(
    dbx_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        dbx_settings, tmp_path_factory.mktemp("dbx-worker") / "worker.log", name="dbx"
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def registry_hook(
    dbx_settings: Settings, dbx_receiver: ThreadedReceiver, stub: DatabricksStub
) -> str:
    """regpilot's registry webhook, installed in the stub workspace through the CLI."""
    result = CliRunner().invoke(
        main,
        [
            "webhooks",
            "install",
            "--target",
            "databricks",
            "--url",
            f"{dbx_receiver.url}/webhooks/databricks/registry",
            "--json",
        ],
        env=settings_environment(dbx_settings),
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{") :])
    assert answer["result"] == "created"
    assert answer["events"] == ["MODEL_VERSION_CREATED", "TRANSITION_REQUEST_CREATED"]
    hook = stub.webhooks[answer["id"]]
    assert hook["http_url_spec"]["secret"] == REGISTRY_SECRET
    assert "model_name" not in hook  # registry-wide
    return str(answer["id"])


@pytest.fixture()
def dbx(
    dbx_settings: Settings,
    dbx_receiver: ThreadedReceiver,
    dbx_worker: WorkerProcess,
    stub: DatabricksStub,
    store: Any,
) -> dict[str, Any]:
    return {
        "settings": dbx_settings,
        "receiver": dbx_receiver,
        "worker": dbx_worker,
        "stub": stub,
        "store": store,
    }


# --- helpers ------------------------------------------------------------------------------------


def _basic(user: str = JOBS_USER, password: str = JOBS_PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _notify_job(
    receiver: ThreadedReceiver, payload: dict[str, Any], authorization: str | None
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = json.dumps(payload).encode()
    return post(f"{receiver.url}/webhooks/databricks/jobs", body, headers)


def _job_id() -> int:
    # Random ids: runs of other tests, tagged with other ids, must not match.
    return random.randint(10**12, 10**15)


def _state(result: str = "SUCCESS", life: str = "TERMINATED") -> dict[str, str]:
    return {"life_cycle_state": life, "result_state": result}


def _outcome(store: Any, source: str, delivery_id: str) -> dict[str, Any] | None:
    raw = store.client.get(store.key("event", source, delivery_id))
    record = json.loads(raw) if raw else None
    if record is None or record.get("outcome") in (None, "queued"):
        return None
    return record


def _verdict(client: Any, run_id: str) -> str | None:
    return client.get_run(run_id).data.tags.get("validation_status")


def _versions(client: Any, name: str) -> list[Any]:
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


def _register_by_hand(client: Any, run_id: str, name: str) -> int:
    """Register a run's model outside regpilot (as a user in the workspace UI would)."""
    model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
    try:
        client.create_registered_model(name)
    except Exception:
        pass  # already there
    version = client.create_model_version(
        name, f"models:/{model_id}", run_id=run_id, tags=BY_HAND_TAGS, model_id=model_id
    )
    return int(version.version)


# --- job notifications --------------------------------------------------------------------------


def test_job_success_runs_each_mlflow_run_of_the_job_through_the_gate(dbx, client):
    job_run, job = _job_id(), _job_id()
    suffix = uuid.uuid4().hex[:8]
    tags = {JOB_RUN_TAG: str(job_run), JOB_TAG: str(job)}
    good = train_run(PASSING, tags=tags, model_name=f"dbx-job-pass-{suffix}")
    bad = train_run(FAILING, tags=tags, model_name=f"dbx-job-fail-{suffix}")
    dbx["stub"].add_job_run(
        {
            "run_id": job_run,
            "job_id": job,
            "state": _state(),
            "run_page_url": f"https://example.cloud.databricks.com/#job/{job}/run/{job_run}",
        }
    )
    # The documented payload shows the ids as strings.
    payload = {
        "event_type": "jobs.on_success",
        "workspace_id": "1234567890123456",
        "run": {"run_id": str(job_run)},
        "job": {"job_id": str(job), "name": "train-nightly"},
    }
    status, answer = _notify_job(dbx["receiver"], payload, _basic())
    assert status == 202 and answer["status"] == "queued", answer

    record = wait_until(
        lambda: _outcome(dbx["store"], "databricks-jobs", answer["delivery_id"]),
        message="job outcome",
    )
    assert record["outcome"] == "processed", record
    assert "2 of 2 MLflow run(s)" in record["detail"]
    assert _verdict(client, good) == "PASSED"
    assert _verdict(client, bad) == "FAILED"
    [version] = _versions(client, f"dbx-job-pass-{suffix}")
    stored = client.get_model_version(f"dbx-job-pass-{suffix}", version.version)
    assert stored.tags["validation_status"] == "PASSED"
    assert stored.tags["source_run_id"] == good
    assert "challenger" in stored.aliases
    assert _versions(client, f"dbx-job-fail-{suffix}") == []
    # The payload was a hint: the worker read the job run back with the bearer token.
    assert dbx["stub"].calls_to("/api/2.2/jobs/runs/get")
    assert any(
        q.get("run_id") == [str(job_run)]
        for _, _, q in dbx["stub"].calls_to("/api/2.2/jobs/runs/get")
    )

    # Replaying the same body is a duplicate: nothing is queued twice.
    status, again = _notify_job(dbx["receiver"], payload, _basic())
    assert status == 200 and again["status"] == "duplicate"


def test_multi_task_job_reads_every_page_of_tasks_and_skips_failed_tasks(dbx, client):
    job_run, job = _job_id(), _job_id()
    task_a, task_b, task_c = job_run + 1, job_run + 2, job_run + 3
    suffix = uuid.uuid4().hex[:8]
    # Whether MLflow's jobRunID tag holds the task run id or the parent's is unverified: one run
    # of each kind. The run of the failed task passes the gate but must not be registered.
    run_a = train_run(PASSING, tags={JOB_RUN_TAG: str(task_a)}, model_name=f"dbx-mt-a-{suffix}")
    run_b = train_run(PASSING, tags={JOB_RUN_TAG: str(job_run)}, model_name=f"dbx-mt-b-{suffix}")
    run_c = train_run(PASSING, tags={JOB_RUN_TAG: str(task_c)}, model_name=f"dbx-mt-c-{suffix}")
    dbx["stub"].add_job_run(
        {
            "run_id": job_run,
            "job_id": job,
            "state": _state("SUCCESS_WITH_FAILURES"),
            "tasks": [
                {"task_key": "train_a", "run_id": task_a, "state": _state()},
                {"task_key": "train_b", "run_id": task_b, "state": _state()},
                {"task_key": "flaky", "run_id": task_c, "state": _state("FAILED")},
            ],
        },
        tasks_per_page=2,
    )
    payload = {"event_type": "jobs.on_success", "run": {"run_id": job_run}, "job": {"job_id": job}}
    status, answer = _notify_job(dbx["receiver"], payload, f"Bearer {JOBS_BEARER}")
    assert status == 202, answer

    record = wait_until(
        lambda: _outcome(dbx["store"], "databricks-jobs", answer["delivery_id"]),
        message="job outcome",
    )
    assert record["outcome"] == "processed", record
    assert _verdict(client, run_a) == "PASSED"
    assert _verdict(client, run_b) == "PASSED"
    assert _verdict(client, run_c) is None
    assert len(_versions(client, f"dbx-mt-a-{suffix}")) == 1
    assert len(_versions(client, f"dbx-mt-b-{suffix}")) == 1
    assert _versions(client, f"dbx-mt-c-{suffix}") == []
    pages = [
        q
        for _, _, q in dbx["stub"].calls_to("/api/2.2/jobs/runs/get")
        if q["run_id"] == [str(job_run)]
    ]
    assert [q.get("page_token") for q in pages] == [None, ["page-1"]]


def test_notification_is_only_a_hint_a_run_that_did_not_succeed_is_not_acted_on(dbx, client):
    job_run = _job_id()
    run_id = train_run(PASSING, tags={JOB_RUN_TAG: str(job_run)}, model_name="dbx-hint")
    dbx["stub"].add_job_run({"run_id": job_run, "job_id": 1, "state": _state("FAILED")})
    payload = {"event_type": "jobs.on_success", "run": {"run_id": job_run}, "job": {"job_id": 1}}
    status, answer = _notify_job(dbx["receiver"], payload, _basic())
    assert status == 202
    record = wait_until(
        lambda: _outcome(dbx["store"], "databricks-jobs", answer["delivery_id"]),
        message="job outcome",
    )
    assert record["outcome"] == "ignored"
    assert "did not succeed (FAILED)" in record["detail"]
    assert _verdict(client, run_id) is None


def test_job_failure_is_recorded_not_acted_on(dbx):
    job_run = _job_id()
    payload = {"event_type": "jobs.on_failure", "run": {"run_id": job_run}, "job": {"job_id": 5}}
    status, answer = _notify_job(dbx["receiver"], payload, _basic())
    assert status == 200 and answer["status"] == "ignored"
    assert "jobs.on_failure" in answer["reason"]
    events = dbx["store"].events(limit=200)
    assert any(
        e["delivery_id"] == answer["delivery_id"] and e["outcome"] == "ignored" for e in events
    )
    assert not any(
        q.get("run_id") == [str(job_run)]
        for _, _, q in dbx["stub"].calls_to("/api/2.2/jobs/runs/get")
    )


@pytest.fixture()
def http(dbx_settings: Settings):
    # A queue no worker consumes: these check the receiver's answers only.
    quiet = derive(dbx_settings, task_queue=dbx_settings.task_queue + "-receiver")
    return create_app(quiet, configure_logging=False).test_client()


_GOOD_JOB = {"event_type": "jobs.on_success", "run": {"run_id": "1"}, "job": {"job_id": "2"}}


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing Authorization header"),
        ("Basic " + base64.b64encode(f"{JOBS_USER}:wrong".encode()).decode(), "do not match"),
        (
            "Basic " + base64.b64encode(f"intruder:{JOBS_PASSWORD}".encode()).decode(),
            "do not match",
        ),
        ("Basic not-base64!", "malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "malformed Basic credentials"),
        ("Bearer wrong-token", "do not match"),
        ("Digest abc", "not accepted"),
    ],
    # Fixed ids: the password is random per process, and pytest-xdist needs every worker to
    # collect the same test ids.
    ids=["missing", "wrong-password", "wrong-user", "not-base64", "no-colon", "bearer", "digest"],
)
def test_bad_or_missing_job_credentials_are_refused(http, authorization, reason):
    headers = {"Authorization": authorization} if authorization else {}
    response = http.post("/webhooks/databricks/jobs", json=_GOOD_JOB, headers=headers)
    assert response.status_code == 401
    assert reason in response.json["reason"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"event_type": "jobs.on_success", "run": {"run_id": "abc"}}, "integer id"),
        ({"event_type": "jobs.on_success"}, "run"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_job_payloads_get_400_with_a_reason(http, payload, fragment):
    response = http.post(
        "/webhooks/databricks/jobs", json=payload, headers={"Authorization": _basic()}
    )
    assert response.status_code == 400
    assert fragment in response.json["reason"]


# --- registry webhooks ----------------------------------------------------------------------


def _signed(payload: dict[str, Any], secret: str = REGISTRY_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Databricks-Signature": sign_databricks(secret, body),
    }


def test_bad_or_missing_registry_signature_is_refused(http):
    payload = {"event": "MODEL_VERSION_CREATED", "model_name": "m", "version": "1"}
    body, headers = _signed(payload, "not-the-secret")
    response = http.post("/webhooks/databricks/registry", data=body, headers=headers)
    assert response.status_code == 401 and response.json["reason"] == "signature does not match"
    body, headers = _signed(payload)
    tampered = http.post("/webhooks/databricks/registry", data=body + b" ", headers=headers)
    assert tampered.status_code == 401
    del headers["X-Databricks-Signature"]
    missing = http.post("/webhooks/databricks/registry", data=body, headers=headers)
    assert missing.status_code == 401 and "X-Databricks-Signature" in missing.json["reason"]


@pytest.mark.parametrize(
    "event",
    [
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_STAGING",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
        "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
        "MODEL_VERSION_TAG_SET",
        "COMMENT_CREATED",
        "REGISTERED_MODEL_CREATED",
        "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
        "NOT_A_DOCUMENTED_EVENT",
    ],
)
def test_registry_events_that_need_no_action_are_recorded_as_ignored(http, event):
    payload = {
        "event": event,
        "webhook_id": "w",
        "event_timestamp": random.randint(1, 10**12),
        "model_name": "m",
        "version": "1",
    }
    body, headers = _signed(payload)
    response = http.post("/webhooks/databricks/registry", data=body, headers=headers)
    assert response.status_code == 200 and response.json["status"] == "ignored"


def test_registry_replays_are_duplicates_and_bad_events_get_400(http):
    payload = {
        "event": "MODEL_VERSION_CREATED",
        "model_name": "dbx-replay",
        "version": "1",
        "event_timestamp": random.randint(1, 10**12),
    }
    body, headers = _signed(payload)
    first = http.post("/webhooks/databricks/registry", data=body, headers=headers)
    second = http.post("/webhooks/databricks/registry", data=body, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json["status"] == "duplicate"
    body, headers = _signed({"event": "MODEL_VERSION_CREATED", "model_name": "m"})
    response = http.post("/webhooks/databricks/registry", data=body, headers=headers)
    assert response.status_code == 400 and "needs version" in response.json["reason"]


def test_model_version_created_validates_tags_and_aliases_the_version(dbx, client, registry_hook):
    name = f"dbx-created-{uuid.uuid4().hex[:8]}"
    version = _register_by_hand(client, train_run(PASSING), name)
    status, body = dbx["stub"].fire(
        registry_hook,
        {
            "event": "MODEL_VERSION_CREATED",
            "event_timestamp": 1,
            "model_name": name,
            "version": str(version),
        },
    )
    assert status == 202, body

    def validated() -> Any:
        mv = client.get_model_version(name, str(version))
        return mv if "validation_status" in mv.tags else None

    wait_until(validated, message="version validated")
    # The verdict tags come before the alias move: wait for the move, then read again.
    wait_until(lambda: client.get_registered_model(name).aliases.get("challenger"), message="alias")
    stored = client.get_model_version(name, str(version))
    assert stored.tags["validation_status"] == "PASSED"
    assert "challenger" in stored.aliases
    [gate] = [d for d in dbx["store"].decisions(name) if d["kind"] == "gate"]
    assert gate["trigger"]["source"] == "databricks-registry"


# --- the Databricks Workspace Model Registry (registry URI `databricks`) ------------------------


@pytest.fixture(scope="module")
def workspace(
    dbx_settings: Settings, stub: DatabricksStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A receiver and a worker on MLflow's workspace registry store, through the stub."""
    ws_settings = derive(
        dbx_settings,
        mlflow_registry_uri="databricks",
        task_queue=dbx_settings.task_queue + "-workspace",
    )
    receiver = ThreadedReceiver(ws_settings)
    worker = WorkerProcess(
        ws_settings, tmp_path_factory.mktemp("ws-worker") / "worker.log", name="dbx-ws"
    )
    yield {"settings": ws_settings, "receiver": receiver, "worker": worker, "stub": stub}
    worker.stop()
    receiver.stop()


def _version_created_on_the_workspace_registry(
    workspace: dict[str, Any], client: Any, store: Any
) -> tuple[str, int, dict[str, Any]]:
    """Register a passing version by hand, send its event, wait for the task's outcome."""
    name = f"dbx-ws-{uuid.uuid4().hex[:8]}"
    version = _register_by_hand(client, train_run(PASSING), name)
    payload = {"event": "MODEL_VERSION_CREATED", "model_name": name, "version": str(version)}
    body, headers = _signed({**payload, "event_timestamp": 1})
    receiver = workspace["receiver"]
    status, answer = post(f"{receiver.url}/webhooks/databricks/registry", body, headers)
    assert status == 202, answer
    record = wait_until(
        lambda: _outcome(store, "databricks-registry", answer["delivery_id"]),
        message="workspace registry outcome",
    )
    return name, version, record


def test_workspace_registry_alias_refusal_is_permanent_never_retried(workspace, client, store):
    stub = workspace["stub"]
    before = len(stub.requests)
    name, version, record = _version_created_on_the_workspace_registry(workspace, client, store)
    # Under the shipped retry policy an error filed as transient ends as "dead" after its
    # retries; "Method 'set_registered_model_alias' is unsupported ..." must not.
    assert record["outcome"] != "dead", record
    assert not [
        letter
        for letter in store.dead_letters()
        if letter.get("kwargs", {}).get("delivery_id") == record["delivery_id"]
    ]
    # MLflow's Databricks stores did the work, with the workspace token, through the stub.
    sent = stub.requests[before:]
    assert ("GET", "/api/2.0/mlflow/model-versions/get", True) in sent
    assert ("GET", "/api/2.0/mlflow/runs/get", True) in sent
    assert all(authorized for _, path, authorized in sent if path.startswith("/api/2.0/mlflow/"))
    # The workspace registry has no aliases: MLflow refuses before sending, so none was sent.
    assert not [path for _, path, _ in sent if path.endswith("/registered-models/alias")]
    assert "challenger" not in client.get_model_version(name, str(version)).aliases


def test_workspace_registry_version_gets_its_verdict_tags(workspace, client, store):
    name, version, record = _version_created_on_the_workspace_registry(workspace, client, store)
    assert record["outcome"] == "processed", record
    stored = client.get_model_version(name, str(version))
    assert stored.tags.get("validation_status") == "PASSED"
    assert "validation_report" in stored.tags
    # No aliases there: the policy's default maps `challenger` to the Staging stage.
    assert stored.current_stage == "Staging"


def test_transition_requests_are_approved_or_rejected_with_the_verdict(dbx, client, registry_hook):
    stub = dbx["stub"]
    name = f"dbx-transition-{uuid.uuid4().hex[:8]}"
    good = _register_by_hand(client, train_run(PASSING), name)
    bad = _register_by_hand(client, train_run(FAILING), name)
    staging = _register_by_hand(client, train_run(PASSING), name)
    stub.add_transition_request(name, good, "Production")
    stub.add_transition_request(name, bad, "Staging")
    stub.add_transition_request(name, staging, "Staging")

    # The stage from the event name; from `to_stage`; and, absent both, from the open requests.
    events = [
        {"event": "TRANSITION_REQUEST_TO_PRODUCTION_CREATED", "version": str(good)},
        {"event": "TRANSITION_REQUEST_CREATED", "version": str(bad), "to_stage": "Staging"},
        {"event": "TRANSITION_REQUEST_CREATED", "version": str(staging)},
    ]
    for index, event in enumerate(events):
        status, body = stub.fire(
            registry_hook, {**event, "model_name": name, "event_timestamp": index}
        )
        assert status == 202, body

    def answered() -> list[dict[str, Any]] | None:
        mine = [a for a in stub.actions if a["name"] == name]
        return mine if len(mine) == 3 else None

    actions = {int(a["version"]): a for a in wait_until(answered, message="3 answers")}
    assert actions[good]["action"] == "approve" and actions[good]["stage"] == "Production"
    assert actions[good]["comment"].startswith("regpilot: PASSED, approved for Production.")
    assert actions[good]["archive_existing_versions"] is False
    assert actions[bad]["action"] == "reject" and actions[bad]["stage"] == "Staging"
    assert actions[bad]["comment"].startswith("regpilot: FAILED, rejected for Staging.")
    assert "test_accuracy: expected >= 0.85, got 0.6" in actions[bad]["comment"]
    assert actions[staging]["action"] == "approve" and actions[staging]["stage"] == "Staging"
    # Approval moved the stage (the workspace registry does it; the stub asks MLflow to).
    assert client.get_model_version(name, str(good)).current_stage == "Production"
    assert client.get_model_version(name, str(bad)).current_stage == "None"
    kinds = [d for d in dbx["store"].decisions(name) if d["kind"] == "transition_request"]
    assert sorted((d["version"], d["action"]) for d in kinds) == sorted(
        [(good, "approve"), (bad, "reject"), (staging, "approve")]
    )

    # A request answered already (here by regpilot itself) is skipped on a replay of the task.
    status, body = stub.fire(
        registry_hook,
        {
            "event": "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
            "model_name": name,
            "version": str(good),
            "event_timestamp": 99,
        },
    )
    delivery = json.loads(body)["delivery_id"]
    record = wait_until(
        lambda: _outcome(dbx["store"], "databricks-registry", delivery), message="replay outcome"
    )
    assert record["outcome"] == "processed" and record["detail"] == "skipped"
    assert len([a for a in stub.actions if a["name"] == name]) == 3


# --- the CLI ------------------------------------------------------------------------------------


def test_webhooks_install_again_updates_and_test_fires_through_the_receiver(
    dbx_settings, registry_hook, dbx_receiver, stub
):
    env = settings_environment(dbx_settings)
    url = f"{dbx_receiver.url}/webhooks/databricks/registry"
    again = CliRunner().invoke(
        main, ["webhooks", "install", "--target", "databricks", "--url", url], env=env
    )
    assert again.exit_code == 0, again.output
    assert f"updated Databricks registry webhook {registry_hook}" in again.output
    assert len([h for h in stub.webhooks.values() if h["http_url_spec"]["url"] == url]) == 1

    fired = CliRunner().invoke(
        main,
        [
            "webhooks",
            "test",
            "--target",
            "databricks",
            "--id",
            registry_hook,
            "--event",
            "COMMENT_CREATED",
        ],
        env=env,
    )
    assert fired.exit_code == 0, fired.output
    assert "receiver answered 200" in fired.output and "ignored" in fired.output


def test_webhooks_cli_refuses_bad_input_with_a_message(dbx_settings, stub, dbx_receiver):
    env = settings_environment(dbx_settings)
    url = f"{dbx_receiver.url}/webhooks/databricks/registry"
    wide_only = CliRunner().invoke(
        main,
        [
            "webhooks",
            "install",
            "--target",
            "databricks",
            "--url",
            url,
            "--model-name",
            "m",
            "--event",
            "REGISTERED_MODEL_CREATED",
        ],
        env=env,
    )
    assert wide_only.exit_code == 1 and "registry-wide" in wide_only.output
    unknown = CliRunner().invoke(
        main,
        ["webhooks", "install", "--target", "databricks", "--url", url, "--event", "NOPE"],
        env=env,
    )
    assert unknown.exit_code == 1 and "unknown Databricks registry event" in unknown.output
    missing = CliRunner().invoke(
        main, ["webhooks", "test", "--target", "databricks", "--id", "no-such-hook"], env=env
    )
    assert missing.exit_code == 1 and "NotFound" in missing.output
    no_secret = {**env, "REGPILOT_DATABRICKS_WEBHOOK_SECRET": ""}
    refused = CliRunner().invoke(
        main, ["webhooks", "install", "--target", "databricks", "--url", url], env=no_secret
    )
    assert refused.exit_code == 1 and "REGPILOT_DATABRICKS_WEBHOOK_SECRET" in refused.output
    bad_token = {**env, "DATABRICKS_TOKEN": "wrong"}
    denied = CliRunner().invoke(
        main, ["webhooks", "install", "--target", "databricks", "--url", url], env=bad_token
    )
    assert denied.exit_code == 1 and "Unauthenticated" in denied.output
    assert "Traceback" not in denied.output


# --- start-up -------------------------------------------------------------------------------


def test_enabled_without_workspace_credentials_refuses_to_start(settings):
    with pytest.raises(ConfigurationError, match="DATABRICKS_HOST"):
        create_app(
            derive(settings, databricks_enabled=True, databricks_webhook_secret="s"),
            configure_logging=False,
        )
    with pytest.raises(ConfigurationError, match="DATABRICKS_TOKEN"):
        create_app(
            derive(
                settings,
                databricks_enabled=True,
                databricks_host="https://example.cloud.databricks.com",
                databricks_webhook_secret="s",
            ),
            configure_logging=False,
        )


def test_databricks_endpoints_exist_only_when_enabled(settings):
    app = create_app(settings, configure_logging=False).test_client()
    assert app.post("/webhooks/databricks/jobs", json=_GOOD_JOB).status_code == 404
    assert app.post("/webhooks/databricks/registry", json={}).status_code == 404


def test_webhooks_test_without_target_fires_the_mlflow_webhook(stack):
    # The same command's MLflow side: MLflow signs its test event and our receiver accepts it.
    env = settings_environment(stack["settings"])
    result = CliRunner().invoke(main, ["webhooks", "test", "--json"], env=env)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{") :])
    assert answer["status_code"] in (200, 202)
