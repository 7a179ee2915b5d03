"""Section 4: a retention pass over a model with thousands of versions.

The model grows to each size in turn (1,250, 2,500, 5,000 versions by default), every version
carrying the tags regpilot writes. At each size a fresh process times the pass regpilot runs
(`enforce_retention(..., dry_run=True)`: read every version page by page, read the aliases,
plan), then measures its peak memory with tracemalloc in a separate pass, so the tracing does
not slow the timed ones. Run as a module, this file is that measuring process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.runs import make_runs
from benchmarks.stack import ROOT, BenchStack
from benchmarks.stats import Summary

SIZES = (1250, 2500, 5000)


@dataclass(frozen=True)
class RetentionConfig:
    """Which sizes, how many timed passes at each."""

    sizes: tuple[int, ...] = SIZES
    repetitions: int = 5
    create_threads: int = 4


@dataclass
class SizeResult:
    """The passes at one size."""

    versions: int
    seconds: list[float]
    pages: int
    planned_prune: int
    peak_traced_bytes: int
    max_rss_bytes: int
    rss_before_bytes: int

    def time(self) -> Summary:
        """Return the pass time in seconds."""
        return Summary.of(self.seconds)


@dataclass
class RetentionResults:
    """Section 4's measurements."""

    config: RetentionConfig
    sizes: list[SizeResult] = field(default_factory=list)
    create_seconds: float = 0.0


def version_tags(run_id: str, index: int) -> dict[str, str]:
    """Return tags the size of those regpilot writes on a version it registers."""
    metadata = {
        "training_date": "2026-11-27T08:00:00+00:00",
        "metrics": {"test_accuracy": 0.95, "test_precision": 0.93, "test_recall": 0.92},
        "params": {"C": "1.0", "max_iter": "50"},
        "features": [f"f{i}" for i in range(8)],
    }
    return {
        "source_run_id": run_id,
        "registration_date": "2026-11-27T08:00:00+00:00",
        "framework": "sklearn",
        "metadata": json.dumps(metadata),
        "registered_by": "regpilot",
        "validation_status": "PASSED",
        "validation_report": "PASSED: test_accuracy 0.95 >= 0.85; test_precision 0.93 >= 0.8; "
        "test_recall 0.92 >= 0.8",
        "last_decision": json.dumps(
            {"kind": "registration", "at": "2026-11-27T08:00:00+00:00", "by": f"bench:{index}"}
        ),
    }


def grow(
    tracking_uri: str, name: str, source: str, run_id: str, start: int, stop: int, threads: int
) -> None:
    """Create versions start+1..stop of `name` (MlflowClient.create_model_version, threaded)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if start == 0:
        client.create_registered_model(name)

    def create(index: int) -> None:
        client.create_model_version(
            name, source, run_id=run_id, tags=version_tags(run_id, index), await_creation_for=0
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(create, range(start, stop)))


def run_retention_benchmark(
    stack: BenchStack, config: RetentionConfig, progress: Any = print
) -> RetentionResults:
    """Run section 4: grow one model through the sizes, measuring a pass at each."""
    results = RetentionResults(config)
    run_id = make_runs(stack.mlflow_url, "bench-retention", 1)[0]
    name = f"retention-scale-{stack.prefix.split('-')[-1].rstrip(':')}"
    settings = stack.settings(task_queue=stack.prefix + "retention")
    env = {**_environment(settings), "PYTHONPATH": str(ROOT)}
    have = 0
    for size in config.sizes:
        started = time.monotonic()
        grow(
            stack.mlflow_url,
            name,
            f"runs:/{run_id}/model",
            run_id,
            have,
            size,
            config.create_threads,
        )
        results.create_seconds += time.monotonic() - started
        progress(f"  retention: {size:,} versions ({time.monotonic() - started:.0f}s to add them)")
        have = size
        argv = [
            sys.executable,
            "-m",
            "benchmarks.retention_scale",
            name,
            "--repetitions",
            str(config.repetitions),
        ]
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("{")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"retention pass failed: {done.stdout}\n{done.stderr[-3000:]}")
        data = json.loads(line)
        result = SizeResult(versions=size, **data)
        results.sizes.append(result)
        progress(
            f"  retention pass at {size:,}: {result.time().cell('{:.2f}')} s, "
            f"{result.pages} pages, peak {result.peak_traced_bytes / 2**20:.1f} MiB traced"
        )
    return results


def _environment(settings: Any) -> dict[str, str]:
    from config.settings import child_environment, settings_environment

    return child_environment(settings_environment(settings))


def measure(name: str, repetitions: int) -> dict[str, Any]:
    """Time `repetitions` dry-run passes, then trace one; return what was measured."""
    from config.policy import load_policy
    from config.settings import Settings
    from regpilot.registry import build_registry
    from regpilot.workflows.context import Context
    from regpilot.workflows.retention import enforce_retention
    from regpilot.workflows.snapshot import read_snapshot

    settings = Settings()
    ctx = Context(
        registry=build_registry(settings),
        policy=load_policy(settings.policy_file),
        settings=settings,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The first pass pays the imports and the first connection.
    warm = enforce_retention(ctx, read_snapshot(ctx, name), dry_run=True)
    seconds = []
    for _ in range(repetitions):
        started = time.perf_counter()
        result = enforce_retention(ctx, read_snapshot(ctx, name), dry_run=True)
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    enforce_retention(ctx, read_snapshot(ctx, name), dry_run=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": seconds,
        "pages": result.pages_read,
        "planned_prune": len(warm.plan.prune),
        "peak_traced_bytes": peak,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_before_bytes": rss_before,
    }


def main() -> None:
    """Measure retention passes over one model (the settings come from the environment)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.name, args.repetitions)))


if __name__ == "__main__":
    main()
