"""Tests that need the shared data (../shared or $CFCSP_SHARED) skip without it, with one line saying
what is missing and how to point at it; under CI they fail instead of skipping."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run_yunet_tests(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CFCSP_SHARED"] = str(tmp_path / "no_shared_here")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            str(TESTS / "faces" / "test_yunet.py"),
            "-k",
            "five_faces",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=TESTS.parent,
        timeout=300,
    )


def test_missing_shared_data_skips_with_a_clear_line(tmp_path):
    proc = run_yunet_tests(tmp_path, ci=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, proc.stdout[-2000:]
    line = skipped[0]
    assert "models/yunet/yunet_n_" in line and "CFCSP_SHARED" in line and "no_shared_here" in line


def test_missing_shared_data_fails_under_ci(tmp_path):
    proc = run_yunet_tests(tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "CI must not skip" in proc.stdout and "SKIPPED" not in proc.stdout
