"""What the numbers were measured on: machine, load, versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata

PACKAGES = ("mlflow", "flask", "werkzeug", "gunicorn", "celery", "kombu", "redis", "pydantic")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def load_average() -> str:
    """Return the 1/5/15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


@dataclass
class Environment:
    """The conditions of one benchmark run."""

    started: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    cpu: str = field(default_factory=_cpu_model)
    cores: int = field(default_factory=lambda: os.cpu_count() or 0)
    memory_gib: float = field(default_factory=_memory_gib)
    kernel: str = field(default_factory=platform.release)
    python: str = field(default_factory=platform.python_version)
    load_at_start: str = field(default_factory=load_average)
    load_at_end: str = ""
    finished: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in PACKAGES:
            try:
                self.packages[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                self.packages[name] = "not installed"
        self.tools["redis-server"] = _command_version(["redis-server", "--version"])
        self.tools["wrk"] = _command_version(["wrk", "-v"])

    def finish(self) -> None:
        """Note the end time and the load average then."""
        self.load_at_end = load_average()
        self.finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class LoadSampler:
    """Sample the 1-minute load average every few seconds, filed under the running section."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.section = "start"
        self.samples: dict[str, list[float]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start sampling in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=self.every_s * 2)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples[self.section].append(os.getloadavg()[0])
