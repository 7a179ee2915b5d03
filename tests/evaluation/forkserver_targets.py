"""Targets for forkserver-mode unit tests (importable by the forked child)."""

from __future__ import annotations

import os
import subprocess
import time


def hang_with_helper(pid_file: str, marker: str) -> None:
    """Like the evaluation child: new session first; then start a helper and hang."""
    os.setsid()
    helper = subprocess.Popen(["sleep", marker])
    with open(pid_file, "w") as handle:
        handle.write(f"{os.getpid()} {helper.pid}\n")
    time.sleep(60)


def exit_leaving_helper(pid_file: str, marker: str) -> None:
    """Exit at once, leaving a helper behind in the group."""
    os.setsid()
    helper = subprocess.Popen(["sleep", marker])
    with open(pid_file, "w") as handle:
        handle.write(f"{os.getpid()} {helper.pid}\n")
