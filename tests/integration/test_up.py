"""`regpilot up` as a user runs it: a real subprocess, from a folder holding a `config.py`."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from config.settings import child_environment
from regpilot.cli.stack import free_port
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
REGPILOT = str(Path(sys.executable).with_name("regpilot"))
EXPORTED = {
    "MLFLOW_TRACKING_URI",
    "REGPILOT_REDIS_URL",
    "REGPILOT_KEY_PREFIX",
    "REGPILOT_OPS_TOKEN",
    "REGPILOT_RUN_WEBHOOK_SECRET",
    "REGPILOT_MLFLOW_WEBHOOK_SECRET",
}
# What `up` promises: every child gone within 30 s of SIGTERM/SIGHUP.
STOP_BUDGET_SECONDS = 30


def processes_in(folder: Path) -> list[int]:
    """Return the pids whose working directory is inside `folder` (every child `up` starts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(f"{folder}/"):
            found.append(int(entry.name))
    return found


def user_folder(tmp_path: Path) -> Path:
    """A folder like a user's project: its `config.py` would shadow regpilot's `config`."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.py").write_text("raise SystemExit('the user config.py was imported')\n")
    (folder / "tasks.py").write_text("raise SystemExit('the user tasks.py was imported')\n")
    return folder


@pytest.fixture()
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; what `up` wrote under it is deleted afterwards."""
    own = f"regpilot-up-{uuid.uuid4().hex[:8]}:"
    yield own
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{own}*", count=1000))
    if keys:
        client.delete(*keys)


def up_environment(tmp_path: Path, redis_url: str, prefix: str) -> dict[str, str]:
    env = child_environment(
        {
            "REGPILOT_STATE_DIR": str(tmp_path / "state"),
            "REGPILOT_REDIS_URL": redis_url,
            "REGPILOT_KEY_PREFIX": prefix,
            "REGPILOT_TASK_QUEUE": prefix.rstrip(":"),
            "REGPILOT_POLICY_FILE": str(FIXTURES / "policy.yaml"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in EXPORTED - {"REGPILOT_REDIS_URL", "REGPILOT_KEY_PREFIX"}:
        env.pop(name, None)
    return env


class Up:
    """A running `regpilot up`, its stdout lines collected by a thread."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [REGPILOT, "up", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.stdout)).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr)).start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))

    def exports(self) -> dict[str, str] | None:
        found = {}
        for line in self.stdout:
            assert line.startswith("export "), f"stdout carries only export lines: {line!r}"
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
        return found if set(found) == EXPORTED else None

    def wait_exports(self, timeout: float = 300) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exports = self.exports()
            if exports:
                return exports
            if self.process.poll() is not None:
                time.sleep(0.5)  # let the reader threads drain
                pytest.fail("up exited:\n" + "\n".join(self.stderr[-60:]))
            time.sleep(0.3)
        pytest.fail("no export lines:\n" + "\n".join(self.stderr[-60:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REGPILOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_up_shares_its_configuration_with_the_cli_and_stops_on_sigterm(tmp_path, redis_url, prefix):
    import mlflow

    from tests.support import train_run

    folder = user_folder(tmp_path)
    env = up_environment(tmp_path, redis_url, prefix)
    port = free_port()
    up = Up(["--port", str(port)], env, folder)
    state = (tmp_path / "state" / "local").resolve()
    try:
        exports = up.wait_exports()
        assert exports["REGPILOT_REDIS_URL"] == redis_url  # the setting given, not db 0
        assert exports["REGPILOT_KEY_PREFIX"] == prefix
        assert len(exports["REGPILOT_OPS_TOKEN"]) >= 32
        assert exports["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
        assert (state / "mlflow-port").read_text().strip() == exports["MLFLOW_TRACKING_URI"].rsplit(
            ":", 1
        )[1]

        # A run that logged other metric names than the policy wants: a FAILED verdict.
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(exports["MLFLOW_TRACKING_URI"])
        try:
            run_id = train_run({"precision": 0.91, "f1_macro": 0.88}, experiment="up-test")
        finally:
            mlflow.set_tracking_uri(previous)
        # Another shell: none of the settings `up` was given, only the pasted lines.
        shell = {k: v for k, v in os.environ.items() if k not in EXPORTED} | exports
        sent = cli(
            [
                "notify-run",
                run_id,
                "--model-name",
                "up-model",
                "--url",
                f"http://127.0.0.1:{port}/webhooks/runs",
            ],
            shell,
            folder,
        )
        assert sent.returncode == 0, sent.stderr

        def verdict() -> list[dict[str, object]]:
            result = cli(["history", "up-model", "--json"], shell, folder)
            assert result.returncode == 0, result.stderr
            decisions = json.loads(result.stdout)["decisions"]
            return [e for e in decisions if e.get("kind") == "gate"]

        gates = wait_until(verdict, timeout=120, interval=1, message="the gate record")
        assert gates[0]["verdict"] == "FAILED"
        events = cli(["ops", "events", "--json"], shell, folder)
        assert events.returncode == 0, events.stderr
        delivery = next(e for e in json.loads(events.stdout) if e.get("run_id") == run_id)
        assert (delivery["verdict"], delivery["model"]) == ("FAILED", "up-model")
        table = cli(["ops", "events"], shell, folder).stdout.splitlines()
        header = table[0].split()
        row = next(line.split() for line in table if run_id in line)
        # "received (UTC)" and the date are both two words: the columns line up.
        assert row[header.index("verdict")] == "FAILED"
        assert row[header.index("model")] == "up-model"

        why = cli(["explain", "--run-id", run_id], shell, folder)
        assert why.returncode == 0, why.stderr
        assert "required test_accuracy missing; the run logged f1_macro, precision" in why.stdout
        assert "(did you mean precision?)" in why.stdout  # test_precision vs precision
        as_json = json.loads(cli(["explain", "--run-id", run_id, "--json"], shell, folder).stdout)
        assert as_json["logged_metrics"] == {run_id: ["f1_macro", "precision"]}
        assert [d["kind"] for d in as_json["decisions"]] == ["gate"]
        assert [e["delivery_id"] for e in as_json["deliveries"]] == [delivery["delivery_id"]]

        from mlflow import MlflowClient

        tags = MlflowClient(exports["MLFLOW_TRACKING_URI"]).get_run(run_id).data.tags
        assert tags["validation_summary"].startswith("FAILED: test_accuracy missing, ")
        assert "run logged f1_macro, precision" in tags["validation_summary"]
        assert tags["validation_report"].startswith("{")  # the full report stays
        assert processes_in(state), "the children run in the state folder"

        up.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        up.process.wait(timeout=STOP_BUDGET_SECONDS)
        wait_until(
            lambda: not processes_in(state),
            timeout=max(1, STOP_BUDGET_SECONDS - (time.monotonic() - started)),
            message="every child to exit",
        )
        assert up.process.returncode == 0
    finally:
        up.stop()
        for pid in processes_in(state):
            os.kill(pid, signal.SIGKILL)


def test_a_taken_port_stops_up_with_the_child_log_and_leaves_nothing_running(
    tmp_path, redis_url, prefix
):
    folder = user_folder(tmp_path)
    env = up_environment(tmp_path, redis_url, prefix)
    state = (tmp_path / "state" / "local").resolve()
    state.mkdir(parents=True)
    remembered = free_port()
    (state / "mlflow-port").write_text(f"{remembered}\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = Up(["--port", str(port)], env, folder)
        try:
            up.process.wait(timeout=300)
            time.sleep(0.5)
        finally:
            up.stop()
    stderr = "\n".join(up.stderr)
    assert up.process.returncode == 1, stderr
    assert f"port {remembered}" in stderr  # the remembered MLflow port was used
    assert "receiver exited" in stderr
    assert "receiver.log" in stderr and "  | " in stderr  # the child's last log lines
    assert "Traceback" not in stderr.split("last lines of")[0]
    assert up.stdout == []  # no export lines for a stack that is not running
    assert processes_in(state) == []


def test_sighup_while_starting_stops_up_and_leaves_nothing_running(tmp_path, redis_url, prefix):
    folder = user_folder(tmp_path)
    env = up_environment(tmp_path, redis_url, prefix)
    state = (tmp_path / "state" / "local").resolve()
    up = Up(["--port", str(free_port())], env, folder)
    try:
        wait_until(
            lambda: (
                any("starting MLflow server" in line for line in up.stderr) and processes_in(state)
            ),
            timeout=120,
            message="MLflow to be starting",
        )
        up.process.send_signal(signal.SIGHUP)
        up.process.wait(timeout=STOP_BUDGET_SECONDS)
        wait_until(lambda: not processes_in(state), timeout=5, message="every child to exit")
    finally:
        up.stop()
        for pid in processes_in(state):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert any("stopping (SIGHUP)" in line for line in up.stderr), up.stderr
    assert up.stdout == []
