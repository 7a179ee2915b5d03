"""Section 1: receiver ack throughput and latency, regpilot against two baselines.

All three run under the same gunicorn command (sync workers x2), get the same 283-byte signed
MLflow delivery with a fresh delivery id per request, and are loaded by the same wrk script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.loader import PacedResult, paced_load
from benchmarks.signed import MLFLOW_BODY, PATH, raw_requests, write_pool
from benchmarks.stack import BenchStack
from benchmarks.stats import Summary, ratio_summary

WRK_SCRIPT = Path(__file__).with_name("wrk") / "signed_pool.lua"
VARIANTS = {
    "bare": "benchmarks.apps:bare_app()",
    "naive": "benchmarks.apps:naive_app()",
    "regpilot": "handlers:create_app()",
    "diagnostic": "benchmarks.apps:regpilot_without_io_app()",
}
PACED = ("bare", "naive", "regpilot")
LABELS = {
    "bare": "bare Flask endpoint, 202, no work (ceiling)",
    "naive": "naive: verify + Celery send_task",
    "regpilot": "regpilot: verify, parse, dedupe, history, enqueue",
    "diagnostic": "diagnostic: regpilot minus its Redis script and log line (queues nothing)",
}
POOL_RATE_CAP = 15_000  # requests/s a pool is sized for: twice the bare ceiling seen here


@dataclass(frozen=True)
class ReceiverConfig:
    """How hard and how long to push the receivers."""

    repetitions: int = 5
    duration_s: int = 10
    wrk_threads: int = 2
    wrk_connections: int = 16
    paced_duration_s: int = 8
    warmup_s: int = 2


@dataclass
class WrkRun:
    """One wrk run against one variant."""

    variant: str
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: dict[str, int]
    accepted: int | None = None  # messages found on the queue afterwards (None: not queued)

    @property
    def rps(self) -> float:
        """Return completed requests per second."""
        return self.requests / self.duration_s


@dataclass
class ReceiverResults:
    """Every run of section 1."""

    config: ReceiverConfig
    wrk_command: str
    runs: list[WrkRun] = field(default_factory=list)
    paced: dict[str, list[PacedResult]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def of(self, variant: str) -> list[WrkRun]:
        """Return the runs of one variant, in repetition order."""
        return [r for r in self.runs if r.variant == variant]

    def rps(self, variant: str) -> Summary:
        """Return requests/s over the repetitions."""
        return Summary.of([r.rps for r in self.of(variant)])

    def p50(self, variant: str) -> Summary:
        """Return p50 latency (ms) over the repetitions."""
        return Summary.of([r.p50_ms for r in self.of(variant)])

    def p99(self, variant: str) -> Summary:
        """Return p99 latency (ms) over the repetitions."""
        return Summary.of([r.p99_ms for r in self.of(variant)])

    def ratio(self, variant: str, baseline: str) -> Summary:
        """Return requests/s of `variant` over `baseline`, paired repetition by repetition."""
        return ratio_summary([r.rps for r in self.of(variant)], [r.rps for r in self.of(baseline)])

    def paced_p99(self, variant: str) -> Summary:
        """Return the paced runs' p99 (ms)."""
        return Summary.of([p.p99_ms for p in self.paced[variant]])

    def paced_p50(self, variant: str) -> Summary:
        """Return the paced runs' p50 (ms)."""
        return Summary.of([p.p50_ms for p in self.paced[variant]])


def wrk_argv(config: ReceiverConfig, url: str, duration_s: int) -> list[str]:
    """Return the wrk command line of one saturating run."""
    return [
        "wrk",
        "-t",
        str(config.wrk_threads),
        "-c",
        str(config.wrk_connections),
        "-d",
        f"{duration_s}s",
        "-s",
        str(WRK_SCRIPT),
        url + PATH,
    ]


def run_wrk(
    config: ReceiverConfig, url: str, variant: str, secret: str, work_dir: Path, duration_s: int
) -> WrkRun:
    """Sign a fresh pool and run wrk once; raise if the pool ran out or anything failed."""
    pool = work_dir / "pool.tsv"
    body = work_dir / "body.json"
    body.write_bytes(MLFLOW_BODY)
    write_pool(pool, secret, POOL_RATE_CAP * duration_s)
    env = {
        "BENCH_POOL": str(pool),
        "BENCH_BODY": str(body),
        "BENCH_THREADS": str(config.wrk_threads),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        wrk_argv(config, url, duration_s),
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    if data["wrapped"]:
        raise RuntimeError(f"the signed pool ran out ({data['wrapped']} wraps): enlarge it")
    return WrkRun(
        variant=variant,
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors={k: int(v) for k, v in data["errors"].items()},
    )


def run_receiver_benchmark(
    stack: BenchStack,
    config: ReceiverConfig,
    work_dir: Path,
    progress: callable = print,  # type: ignore[valid-type]
) -> ReceiverResults:
    """Run section 1: saturating wrk runs (interleaved), then paced runs at half saturation."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    work_dir.mkdir(parents=True, exist_ok=True)
    # A queue no worker consumes: this section measures the receivers alone.
    settings = stack.settings(task_queue=stack.prefix + "receiver-bench")
    secret = settings.mlflow_webhook_secrets[0]
    results = ReceiverResults(config, " ".join(wrk_argv(config, "<url>", config.duration_s)))
    for variant, spec in VARIANTS.items():
        results.urls[variant] = stack.start_receiver(f"receiver-{variant}", spec, settings)
    try:
        for variant, url in results.urls.items():  # warm-up: imports, connection pools
            run_wrk(config, url, variant, secret, work_dir, config.warmup_s)
            stack.delete_keys()
        order = list(VARIANTS)
        for rep in range(config.repetitions):
            # Rotate the order so no variant always runs first (or last) on a noisy machine.
            shift = rep % len(order)
            for variant in order[shift:] + order[:shift]:
                run = run_wrk(
                    config, results.urls[variant], variant, secret, work_dir, config.duration_s
                )
                if variant in ("naive", "regpilot"):
                    run.accepted = stack.queue_length(settings)
                stack.delete_keys()
                results.runs.append(run)
                progress(
                    f"  receiver rep {rep + 1}/{config.repetitions} {variant:9s} "
                    f"{run.rps:8,.0f} req/s  p50 {run.p50_ms:5.2f} ms  p99 {run.p99_ms:6.2f} ms"
                    f"  errors {sum(run.errors.values())}"
                )
        for variant in PACED:
            results.paced[variant] = []
        for rep in range(config.repetitions):
            for variant in PACED[rep % 3 :] + PACED[: rep % 3]:
                rate = results.rps(variant).median / 2
                port = urlparse(results.urls[variant]).port or 80
                payloads = raw_requests(secret, int(rate * config.paced_duration_s), port)
                paced = paced_load("127.0.0.1", port, payloads, rate)
                stack.delete_keys()
                results.paced[variant].append(paced)
                progress(
                    f"  paced rep {rep + 1}/{config.repetitions} {variant:9s} "
                    f"{paced.offered_rate:7,.0f} req/s offered, {paced.achieved_rate:7,.0f} "
                    f"done  p50 {paced.p50_ms:5.2f} ms  p99 {paced.p99_ms:6.2f} ms  "
                    f"failures {paced.failures}  send lag p99 {paced.p99_send_lag_ms:.1f} ms"
                    f" max {paced.max_send_lag_ms:.1f} ms"
                )
    finally:
        for variant in VARIANTS:
            stack.stop(f"receiver-{variant}")
        stack.delete_keys()
    return results
