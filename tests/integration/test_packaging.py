"""`pip install .` builds a clean wheel: no setuptools deprecation warnings, data files shipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_non_editable_build_has_no_deprecation_warnings_and_ships_the_data(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", ".regpilot", "build", "*.egg-info"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-v", "-w", str(tmp_path)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Deprecat" not in output, [line for line in output.splitlines() if "eprecat" in line]
    assert "is not a package" not in output  # a folder of data files setuptools would skip
    (wheel,) = tmp_path.glob("regpilot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "config/policy.yaml" in names
    assert "handlers/ops/templates/ops/page.html" in names
    assert "regpilot/cli/main.py" in names
