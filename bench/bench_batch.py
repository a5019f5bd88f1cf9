"""Corpus throughput of cfcsp batch: videos/hour and frames/s with 1 and 2 local workers and with Ray.

    python bench/bench_batch.py VIDEO... [--copies 2] [--max-frames 60] [--model M] [--detector mtcnn|yunet]
                                [--detector-model yunet.onnx] [--modes local1,local2,ray2] [--ray-cpus 2]

The corpus is ``--copies`` copies of each VIDEO (hard links in a temporary folder, so every copy is a
separate video to the batch). Each mode labels the whole corpus into a fresh output folder; Ray's
startup (``ray.init``) is timed apart from the batch itself. Prints one JSON line per mode with the
1-minute load average before and after it (the figures mean little on a loaded machine without it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+")
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--model", default=None)
    p.add_argument("--detector", default="mtcnn")
    p.add_argument("--detector-model", default=None)
    p.add_argument("--modes", default="local1,local2,ray2")
    p.add_argument("--ray-cpus", type=int, default=os.cpu_count())
    args = p.parse_args()

    from cfcsp_sdk.batch import available_cores, run_batch

    options = {"detector": args.detector}
    if args.detector_model:
        options["detector_options"] = {"model": args.detector_model}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for k in range(args.copies):
            for v in args.videos:
                dst = corpus / f"{Path(v).stem}-{k}{Path(v).suffix}"
                try:
                    os.link(v, dst)
                except OSError:
                    shutil.copy(v, dst)
        print(
            json.dumps(
                {
                    "videos": args.copies * len(args.videos),
                    "max_frames": args.max_frames,
                    "cores": available_cores(),
                    "detector": args.detector,
                    "model": args.model or "bundled",
                }
            )
        )
        for mode in args.modes.split(","):
            out = Path(tmp) / f"out-{mode}"
            load0 = os.getloadavg()[0]
            extra = {}
            if mode.startswith("local"):
                report = run_batch(
                    [corpus],
                    out,
                    args.model,
                    recognizer_options=options,
                    workers=int(mode[5:]),
                    max_frames=args.max_frames,
                    progress=False,
                )
            else:
                import ray

                from cfcsp_sdk.batch_ray import run_batch_ray

                workers = int(mode[3:])
                t = time.perf_counter()
                ray.init(num_cpus=args.ray_cpus, include_dashboard=False, logging_level="warning", log_to_driver=False)
                extra["ray_init_s"] = round(time.perf_counter() - t, 2)
                share = args.ray_cpus / workers / 2  # half a worker's share for its actor, half for decoding
                report = run_batch_ray(
                    [corpus],
                    out,
                    args.model,
                    recognizer_options=options,
                    workers=workers,
                    actor_cpus=share,
                    decode_cpus=share,
                    threads=max(1, args.ray_cpus // workers),
                    max_frames=args.max_frames,
                    progress=False,
                )
                ray.shutdown()
            summary = report.to_dict()
            print(
                json.dumps(
                    {
                        "mode": mode,
                        **{
                            k: summary[k]
                            for k in ("ok", "failed", "frames", "seconds", "frames_per_second", "videos_per_hour")
                        },
                        **extra,
                        "load_before": round(load0, 2),
                        "load_after": round(os.getloadavg()[0], 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
