"""The issue's targets, judged on the medians of the repetitions."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.burst import BurstResults
from benchmarks.e2e import E2EResults
from benchmarks.receiver import ReceiverResults
from benchmarks.retention_scale import RetentionResults

LINEAR_SLACK = 1.5  # time per version may grow this much from the smallest to the largest size


@dataclass(frozen=True)
class Verdict:
    """One target: what was measured against what was asked."""

    name: str
    goal: str
    measured: str
    met: bool


def judge(
    receiver: ReceiverResults | None,
    e2e: E2EResults | None,
    burst: BurstResults | None,
    retention: RetentionResults | None,
) -> list[Verdict]:
    """Return a verdict for every target whose section ran."""
    verdicts: list[Verdict] = []
    if receiver is not None:
        naive = receiver.ratio("regpilot", "naive").median
        bare = receiver.ratio("regpilot", "bare").median
        p99 = receiver.paced_p99("regpilot").median
        verdicts += [
            Verdict(
                "receiver req/s vs the naive receiver", ">= 1.0x", f"{naive:.2f}x", naive >= 1.0
            ),
            Verdict("receiver req/s vs the bare endpoint", ">= 0.6x", f"{bare:.2f}x", bare >= 0.6),
            Verdict("receiver p99 at half of saturation", "< 15 ms", f"{p99:.1f} ms", p99 < 15.0),
        ]
    if e2e is not None:
        overhead = e2e.overhead_pct().median
        calls = sum(e2e.calls_plain.values())
        verdicts += [
            Verdict(
                "end-to-end delay over the direct loop",
                "<= 15 %",
                f"{overhead:.1f} %",
                overhead <= 15.0,
            ),
            Verdict("MLflow REST calls per event", "<= 8", str(calls), calls <= 8),
        ]
    if burst is not None:
        lost = sum(r.lost for r in burst.runs)
        doubled = sum(r.doubled for r in burst.runs)
        verdicts.append(
            Verdict(
                "burst: events lost / doubled",
                "0 / 0",
                f"{lost} / {doubled}",
                lost == 0 and doubled == 0,
            )
        )
    if retention is not None and len(retention.sizes) >= 2:
        first, last = retention.sizes[0], retention.sizes[-1]
        per_first = first.time().median / first.versions
        per_last = last.time().median / last.versions
        growth = per_last / per_first
        verdicts.append(
            Verdict(
                "retention pass grows linearly",
                f"time per version x{LINEAR_SLACK} at most from {first.versions:,} to "
                f"{last.versions:,}",
                f"x{growth:.2f}",
                growth <= LINEAR_SLACK,
            )
        )
    return verdicts
