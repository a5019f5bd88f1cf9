"""Throughput of a model repository's networks: faces/s per network and backend at a fixed batch size,
and what the cascade saves by running fine networks only when needed.

    python bench/bench_models.py [--model FOLDER_OR_REPO] [--batch 32] [--runs 7] [--backends onnx,torch]
                                 [--threads N] [--faces-npz FILE]

Inputs are random crops unless --faces-npz names an .npz with an ``images`` array of face crops (e.g.
FER+ test faces) whose coarse decisions then decide how often the fine network runs. Prints medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def timed(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--backends", default="onnx,torch")
    p.add_argument("--threads", type=int, default=0, help="0: each runtime's default")
    p.add_argument("--faces-npz", default=None)
    p.add_argument("--faces", type=int, default=512, help="faces for the cascade measurement")
    p.add_argument("--views", default=None, help="test-time views: model (default), none or mirror")
    p.add_argument(
        "--random-swin",
        metavar="DIR",
        default=None,
        help="bench the paper's Swin-S pair: build it with random weights in DIR (speed does not "
        "depend on the weights; the real ones come from cfcsp convert-paddle)",
    )
    args = p.parse_args()
    if args.random_swin:
        from pathlib import Path

        if not (Path(args.random_swin) / "config.json").is_file():
            from cfcsp_sdk.convert_paddle import affwild2_config
            from cfcsp_sdk.export import write_model_repository
            from cfcsp_sdk.models import build_network

            cfg = affwild2_config(name="swin-s-random-weights")
            mods = {n: build_network(s.architecture, s.num_classes, s.args) for n, s in cfg.networks.items()}
            write_model_repository(args.random_swin, cfg, mods)
        args.model = args.random_swin

    from cfcsp_sdk import Recognizer

    print(f"cpu cores: {os.cpu_count()}  batch: {args.batch}  runs: {args.runs} (medians)")
    for backend in args.backends.split(","):
        opts = {}
        if args.threads:
            opts = {"intra_op_num_threads": args.threads} if backend == "onnx" else {"num_threads": args.threads}
        try:
            rec = Recognizer(args.model, backend=backend, backend_options=opts, views=args.views)
        except Exception as exc:  # e.g. torch not installed
            print(f"[{backend}] unavailable: {exc}")
            continue
        pre = rec.config.preprocessing
        h, w = pre.input_size
        rng = np.random.default_rng(0)
        x = rng.normal(size=(args.batch, pre.channels, h, w)).astype(np.float32)
        views = rec.cascade.views
        print(
            f"[{backend}] model {rec.config.name or rec.folder}  input {pre.channels}x{h}x{w}  "
            f"test-time views: {views.describe()}"
        )
        for name, net in rec.cascade.networks.items():
            sec = timed(lambda: views.average(net(views.expand(x)), len(x)), args.runs)  # noqa: B023 (called now)
            print(f"  {name:12s} {args.batch / sec:9.1f} faces/s  ({1000 * sec / args.batch:.2f} ms/face)")

        if args.faces_npz:
            with np.load(args.faces_npz) as d:
                faces = list(d["images"][: args.faces])
            batch = rec.preprocess(faces)
        else:
            batch = rng.normal(size=(args.faces, pre.channels, h, w)).astype(np.float32)
        results = {}
        for policy in ("when_needed", "always"):
            rec.cascade.fine_policy = policy
            sec = timed(lambda: rec.run_cascade(batch), max(3, args.runs // 2))  # noqa: B023 (called now)
            results[policy] = sec
        rec.cascade.fine_policy = "when_needed"
        out = rec.run_cascade(batch)
        ran = {g: float((~np.isnan(v).any(1)).mean()) for g, v in out.fine_logits.items()}
        print(
            f"  cascade on {len(batch)} faces: when_needed {len(batch) / results['when_needed']:.1f} faces/s, "
            f"always {len(batch) / results['always']:.1f} faces/s; fine networks ran on "
            + ", ".join(f"{100 * v:.1f}%" for v in ran.values())
            + f" of faces; saving {100 * (1 - results['when_needed'] / results['always']):.1f}% of cascade time"
        )


if __name__ == "__main__":
    main()
