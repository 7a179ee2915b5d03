"""`make bench`: run every section on loopback and write docs/BENCHMARKS.md.

Exit status: 0 when every target is met, 1 when one is missed (the report is written either
way), 2 when the harness itself failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from benchmarks.burst import BurstConfig, run_burst_benchmark
from benchmarks.e2e import E2EConfig, run_e2e_benchmark
from benchmarks.environment import Environment, LoadSampler
from benchmarks.receiver import ReceiverConfig, run_receiver_benchmark
from benchmarks.report import Report, render
from benchmarks.retention_scale import RetentionConfig, run_retention_benchmark
from benchmarks.stack import BENCH_REDIS_DB, ROOT, BenchStack
from benchmarks.targets import judge

SECTIONS = ("receiver", "e2e", "burst", "retention")
DEFAULT_OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
DEFAULT_REDIS_URL = f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}"


@dataclass(frozen=True)
class Profile:
    """The counts of one kind of run."""

    receiver: ReceiverConfig
    e2e: E2EConfig
    burst: BurstConfig
    retention: RetentionConfig


PROFILES = {
    # About 20 minutes on 2 cores.
    "full": Profile(ReceiverConfig(), E2EConfig(), BurstConfig(), RetentionConfig()),
    # About a minute and a half: checks the harness, not the numbers.
    "quick": Profile(
        ReceiverConfig(repetitions=2, duration_s=2, paced_duration_s=2),
        E2EConfig(repetitions=2, events=2, warmup_events=2, counted_events=3),
        BurstConfig(events=20, repetitions=2, models=2, senders=4),
        RetentionConfig(sizes=(30, 60), repetitions=2),
    ),
    # The test suite's smoke test (tests/integration/test_benchmarks.py).
    "smoke": Profile(
        ReceiverConfig(repetitions=1, duration_s=1, paced_duration_s=1, warmup_s=1),
        E2EConfig(repetitions=1, events=1, warmup_events=1, counted_events=3),
        BurstConfig(events=6, repetitions=1, models=2, senders=2),
        RetentionConfig(sizes=(5, 10), repetitions=1),
    ),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="full", help="how many repetitions"
    )
    parser.add_argument("--quick", action="store_true", help="same as --profile quick")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument("--output", type=Path, default=None, help="report path")
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help="Redis to use (under a key prefix of its own)",
    )
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    args = _parse(argv)
    profile_name = "quick" if args.quick else args.profile
    profile = PROFILES[profile_name]
    output = args.output or (DEFAULT_OUTPUT if profile_name == "full" else None)
    command = "python -m benchmarks.run" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    environment = Environment()
    state = Path(tempfile.mkdtemp(prefix="regpilot-bench-"))
    stack = BenchStack(state, redis_url=args.redis_url)
    report = Report(environment, profile_name, command.strip(), [], redis_url=args.redis_url)
    started = time.monotonic()
    load = LoadSampler()
    load.start()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {line.strip()}", flush=True)

    try:
        if set(args.sections) - {"receiver"}:
            stack.start_mlflow()
            progress(f"MLflow server (--workers 1) at {stack.mlflow_url}")
        if "receiver" in args.sections:
            load.section = "receiver"
            progress("1. receiver")
            report.receiver = run_receiver_benchmark(
                stack, profile.receiver, state / "receiver", progress
            )
        if "e2e" in args.sections:
            load.section = "e2e"
            progress("2. end-to-end delay")
            report.e2e = run_e2e_benchmark(stack, profile.e2e, progress)
        if "burst" in args.sections:
            load.section = "burst"
            progress("3. burst")
            report.burst = run_burst_benchmark(stack, profile.burst, progress)
        if "retention" in args.sections:
            load.section = "retention"
            progress("4. retention at scale")
            report.retention = run_retention_benchmark(stack, profile.retention, progress)
    except Exception:
        load.stop()
        traceback.print_exc()
        print(f"benchmark failed; process logs in {stack.log_dir}", file=sys.stderr)
        stack.close()
        return 2
    load.stop()
    stack.close()
    shutil.rmtree(state, ignore_errors=True)
    environment.finish()
    report.load = dict(load.samples)
    report.verdicts = judge(report.receiver, report.e2e, report.burst, report.retention)
    text = render(report)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        progress(f"wrote {output}")
    else:
        print(text)
    for verdict in report.verdicts:
        mark = "met   " if verdict.met else "MISSED"
        print(f"{mark} {verdict.name}: {verdict.measured} (goal {verdict.goal})")
    progress("done")
    return 0 if all(v.met for v in report.verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
