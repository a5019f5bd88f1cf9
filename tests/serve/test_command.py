"""`cfcsp serve` as a user starts it: a real process on a free loopback port, stopped as a terminal stops it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx

CLI = [sys.executable, "-c", "import sys; from cfcsp_sdk.cli import main; sys.exit(main())"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_answers_and_stops_cleanly(tiny_repo, media, tmp_path):
    port = _free_port()
    work = tmp_path / "work"
    proc = subprocess.Popen(
        CLI
        + [
            "serve",
            "--port",
            str(port),
            "--model",
            str(tiny_repo),
            "--token",
            "abc",
            "--work-dir",
            str(work),
            "--max-jobs",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "cfcsp serve did not start"
            time.sleep(0.2)
        auth = {"authorization": "Bearer abc"}
        model = httpx.get(f"http://127.0.0.1:{port}/v1/model", headers=auth, timeout=30).json()
        assert model["folder"] == str(tiny_repo) and model["limits"]["max_jobs"] == 2
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/image", content=media("single_face.jpg").read_bytes(), headers=auth, timeout=60
        )
        assert r.status_code == 200 and len(r.json()["faces"]) == 1
        assert (work / "jobs").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), out
    assert not (work / "jobs").exists() and not (work / "uploads").exists()  # nothing left behind


def test_bad_settings_fail_before_the_port_is_taken(tiny_repo):
    r = subprocess.run(
        CLI + ["serve", "--port", "70000", "--model", str(tiny_repo)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "port" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        CLI + ["serve", "--workers", "0", "--model", str(tiny_repo)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "workers" in r.stderr
