"""What the numbers were measured on: machine, load, versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
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
