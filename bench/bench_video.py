"""End-to-end speed of Recognizer.predict_video on one video: frames/s, time per stage, peak RSS.

    python bench/bench_video.py VIDEO [--runs 5] [--model M] [--detector mtcnn|yunet]
                                      [--detector-model yunet.onnx] [--fps N] [--backend onnx|torch]

Prints the median of ``--runs`` runs (after one warm-up run) and every run's figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default="onnx")
    p.add_argument("--detector", default="mtcnn")
    p.add_argument("--detector-model", default=None)
    p.add_argument("--fps", type=float, default=None)
    args = p.parse_args()

    from cfcsp_sdk import Recognizer

    opts = {"model": args.detector_model} if args.detector_model else {}
    rec = Recognizer(args.model, backend=args.backend, detector=args.detector, detector_options=opts)
    rec.predict_video(args.video, fps=args.fps)  # warm-up: sessions, caches
    runs = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        res = rec.predict_video(args.video, fps=args.fps)
        wall = time.perf_counter() - t0
        frames = res.frames_processed
        runs.append({"wall_s": wall, "frames": frames, "faces": sum(r.has_face for r in res.rows),
                     "fps": frames / wall, **{f"{k}_s": v for k, v in res.timings.items()}})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"video: {args.video}  detector: {args.detector}  backend: {args.backend}  model: {rec.config.name}")
    print(f"frames/run: {med['frames']:.0f}  faces/run: {med['faces']:.0f}  runs: {len(runs)} (median shown)")
    print(f"end-to-end: {med['fps']:.1f} frames/s  ({med['wall_s']:.2f} s per run)")
    for stage in ("decode", "detect", "align", "model", "smooth"):
        ms = 1000 * med[f"{stage}_s"] / max(med["frames"], 1)
        print(f"  {stage:7s} {ms:8.2f} ms/frame  ({100 * med[f'{stage}_s'] / med['wall_s']:5.1f} % of wall)")
    print(f"peak RSS: {peak_mb:.0f} MiB")
    print("runs:", json.dumps([{k: round(v, 4) for k, v in r.items()} for r in runs]))


if __name__ == "__main__":
    main()
