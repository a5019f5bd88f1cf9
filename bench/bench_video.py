"""End-to-end speed of Recognizer.predict_video on one video: frames/s, time per stage, peak RSS.

    python bench/bench_video.py VIDEO [--runs 5] [--model M] [--detector mtcnn|yunet]
                                      [--detector-model yunet.onnx] [--fps N] [--backend onnx|torch]
                                      [--detect-every K] [--detector-options JSON]
                                      [--backend-options JSON]

Prints the median of ``--runs`` runs (after one warm-up run) and every run's figures: frames/s, the
process's CPU time per frame (all threads; on a busy machine closer to what a quiet one's wall time
would be than the wall time itself), ms/frame per stage, peak RSS and the load average. With
``--detect-every K`` (K > 1) runs with K and with 1 alternate (same process, same load), both are
printed, with how often the smoothed labels of the two agree: per sampled frame with a face in either
run, faces paired by box overlap (IoU >= 0.5), a frame agrees when every face is paired with the same
label.
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--detect-every", type=int, default=1)
    p.add_argument("--detector-options", default="{}", help="JSON, e.g. '{\"min_face_ratio\": 0}'")
    p.add_argument("--backend-options", default="{}", help="JSON, e.g. '{\"allow_spinning\": true}'")
    args = p.parse_args()
    if args.detect_every > 1:
        return compare_detect_every(args)

    from cfcsp_sdk import Recognizer

    opts = {"model": args.detector_model} if args.detector_model else {}
    opts.update(json.loads(args.detector_options))
    rec = Recognizer(
        args.model,
        backend=args.backend,
        detector=args.detector,
        detector_options=opts,
        backend_options=json.loads(args.backend_options),
    )
    rec.predict_video(args.video, fps=args.fps)  # warm-up: sessions, caches
    runs = []
    for _ in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        res = rec.predict_video(args.video, fps=args.fps)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        frames = res.frames_processed
        runs.append(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "frames": frames,
                "faces": sum(r.has_face for r in res.rows),
                "fps": frames / wall,
                **{f"{k}_s": v for k, v in res.timings.items()},
            }
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"video: {args.video}  detector: {args.detector} {opts or ''}  backend: {args.backend} "
        f"{args.backend_options if args.backend_options != '{}' else ''}  model: {rec.config.name}"
    )
    print(f"frames/run: {med['frames']:.0f}  faces/run: {med['faces']:.0f}  runs: {len(runs)} (median shown)")
    print(
        f"end-to-end: {med['fps']:.1f} frames/s  ({med['wall_s']:.2f} s per run; CPU "
        f"{1000 * med['cpu_s'] / max(med['frames'], 1):.1f} ms/frame, all threads)"
    )
    for stage in ("decode", "detect", "align", "model", "smooth"):
        ms = 1000 * med[f"{stage}_s"] / max(med["frames"], 1)
        print(f"  {stage:7s} {ms:8.2f} ms/frame  ({100 * med[f'{stage}_s'] / med['wall_s']:5.1f} % of wall)")
    print(f"peak RSS: {peak_mb:.0f} MiB")
    print(
        f"load average (1, 5, 15 min) at the end: {tuple(round(x, 2) for x in os.getloadavg())} on "
        f"{os.cpu_count()} CPUs"
    )
    print("runs:", json.dumps([{k: round(v, 4) for k, v in r.items()} for r in runs]))


def label_agreement(a, b) -> tuple[float, int]:
    """Share of sampled frames (with a face in ``a`` or ``b``) whose faces pair up with equal smoothed
    labels; and the number of such frames."""
    from cfcsp_sdk.faces.detection import iou_matrix

    frames: dict[int, tuple[list, list]] = {}
    for which, res in enumerate((a, b)):
        for r in res.rows:
            if r.has_face:
                frames.setdefault(r.frame, ([], []))[which].append(r)
    agree = 0
    for ra, rb in frames.values():
        if len(ra) != len(rb):
            continue
        iou = iou_matrix([r.box for r in ra], [r.box for r in rb])
        agree += all(iou[i].max() >= 0.5 and rb[int(iou[i].argmax())].label == ra[i].label for i in range(len(ra)))
    return agree / max(len(frames), 1), len(frames)


class CountingDetector:
    """Passes detect() through to a real detector and counts the frames it saw."""

    def __init__(self, detector) -> None:
        self.detector, self.frames = detector, 0

    def detect(self, image):
        self.frames += 1
        return self.detector.detect(image)

    def detect_batch(self, images):
        self.frames += len(images)
        batch = getattr(self.detector, "detect_batch", None)
        return batch(images) if batch else [self.detector.detect(i) for i in images]


def compare_detect_every(args) -> None:
    from cfcsp_sdk import Recognizer
    from cfcsp_sdk.faces.detection import get_detector

    opts = {"model": args.detector_model} if args.detector_model else {}
    counting = CountingDetector(get_detector(args.detector, **opts))
    rec = Recognizer(args.model, backend=args.backend, detector=counting)
    rec.predict_video(args.video, fps=args.fps)  # warm-up
    runs: dict[int, list[dict]] = {1: [], args.detect_every: []}
    agreement = []
    for _ in range(args.runs):
        results = {}
        for k in runs:
            counting.frames = 0
            t0 = time.perf_counter()
            res = rec.predict_video(args.video, fps=args.fps, detect_every=k)
            wall = time.perf_counter() - t0
            results[k] = res
            runs[k].append(
                {
                    "wall_s": wall,
                    "frames": res.frames_processed,
                    "detected": counting.frames,
                    "faces": sum(r.has_face for r in res.rows),
                    "fps": res.frames_processed / wall,
                    **{f"{s}_s": v for s, v in res.timings.items()},
                }
            )
        agreement.append(label_agreement(results[1], results[args.detect_every]))
    print(f"video: {args.video}  detector: {args.detector}  backend: {args.backend}  model: {rec.config.name}")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    for k, rs in runs.items():
        med = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        print(
            f"detect_every={k}: {med['fps']:.1f} frames/s (median of {len(rs)}), detector ran on "
            f"{med['detected']:.0f} of {med['frames']:.0f} frames, faces {med['faces']:.0f}; ms/frame: "
            + ", ".join(
                f"{st} {1000 * med[f'{st}_s'] / max(med['frames'], 1):.2f}"
                for st in ("decode", "detect", "align", "model", "smooth")
            )
        )
        print("  runs fps:", [round(r["fps"], 1) for r in rs])
    share, n = agreement[0]
    print(
        f"smoothed-label agreement, detect_every={args.detect_every} vs 1: {100 * share:.1f}% of {n} frames "
        f"with a face (every run: {[round(100 * a, 1) for a, _ in agreement]})"
    )


if __name__ == "__main__":
    main()
