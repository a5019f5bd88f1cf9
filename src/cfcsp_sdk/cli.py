"""The ``cfcsp`` command: ``cfcsp predict``, ``cfcsp info``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Sequence

from cfcsp_sdk.errors import CfcspError

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}


def _recognizer(args: argparse.Namespace):
    from cfcsp_sdk import Recognizer

    detector = args.detector
    if args.detector_model and detector == "mtcnn":
        detector = "yunet"  # a detector file is a YuNet model
    detector_options = {"model": args.detector_model} if args.detector_model else {}
    return Recognizer(args.model, revision=args.revision, backend=args.backend, detector=detector,
                      detector_options=detector_options, local_files_only=args.offline)


IMAGE_WRITE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def _check_output(option: str, value: str | None, suffixes: set[str] | None, hint: str) -> None:
    """Refuse an output path before any work is done: wrong suffix, or a folder that does not exist."""
    if not value:
        return
    path = Path(value)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise CfcspError(f"{option} must end in {hint}, got {value!r}")
    if not path.parent.is_dir():
        raise CfcspError(f"{option}: folder {str(path.parent)!r} does not exist")


def cmd_predict(args: argparse.Namespace) -> int:
    src: Path | str | int = Path(args.input)
    if src.exists():
        is_video = src.suffix.lower() in VIDEO_SUFFIXES
    elif args.input.isdigit():  # a camera index
        if args.max_frames is None:
            raise CfcspError("a camera never ends: pass --max-frames N")
        if args.annotate:
            raise CfcspError("--annotate re-reads the video, which a camera cannot replay")
        src, is_video = int(args.input), True
    elif "://" in args.input:  # a stream or a video on a web server
        src, is_video = args.input, True
    else:
        raise CfcspError(f"no such file: {src}")
    if not is_video:
        from cfcsp_sdk.io.images import load_image

        try:
            load_image(src)
        except CfcspError:
            is_video = True  # not an image OpenCV reads: try it as a video
    if args.plot and not is_video:
        raise CfcspError("--plot draws a timeline and needs a video")
    _check_output("--output", args.output, {".csv", ".json", ".txt"} if is_video else {".csv", ".json"},
                  ".csv or .json (or .txt for an ABAW label file from a video)")
    _check_output("--annotate", args.annotate, None if is_video else IMAGE_WRITE_SUFFIXES,
                  "an image suffix (" + ", ".join(sorted(IMAGE_WRITE_SUFFIXES)) + ")")
    _check_output("--plot", args.plot, None, "")
    rec = _recognizer(args)
    if is_video:
        result = rec.predict_video(src, fps=args.fps, stride=args.stride, max_frames=args.max_frames,
                                   detect_every=args.detect_every,
                                   progress=not args.quiet)
        if result.error:
            print(f"warning: {result.error}; results cover the frames before it", file=sys.stderr)
    else:
        result = rec.predict_image(src)
    if args.output:
        out = Path(args.output)
        if out.suffix.lower() == ".json":
            result.to_json(out, indent=1)
        elif out.suffix.lower() == ".csv":
            result.to_csv(out)
        else:
            result.to_abaw(out)
    if args.annotate:
        if not is_video:
            import cv2

            from cfcsp_sdk.io.images import load_image
            from cfcsp_sdk.render import annotate_frame
            from cfcsp_sdk.results import FaceRow

            rows = [FaceRow(0, 0.0, i, f.box, f.landmarks, f.detection_score, f.prediction.label,
                            f.prediction.probabilities) for i, f in enumerate(result.faces)]
            if not cv2.imwrite(str(args.annotate), annotate_frame(load_image(src), rows, result.labels)):
                raise CfcspError(f"could not write {args.annotate}")
        else:
            from cfcsp_sdk.render import write_annotated_video

            write_annotated_video(result, args.annotate)
    if args.plot:
        from cfcsp_sdk.render import plot_timeline

        plot_timeline(result, args.plot)
    if is_video:
        summary = result.summary()
        print(json.dumps({"source": str(src), "frames_processed": summary["frames_processed"],
                          "frames_with_face": summary["frames_with_face"],
                          "tracks": {t: {"frames": s["frames"], "dominant_label": s["dominant_label"]}
                                     for t, s in summary["tracks"].items()},
                          "dominant_label": summary["overall"]["dominant_label"]}, indent=1))
    else:
        print(json.dumps([{"box": [round(v, 1) for v in f.box], "label": f.prediction.label,
                           "probability": round(f.prediction.probabilities[f.prediction.label], 4)}
                          for f in result.faces], indent=1))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import cv2
    import huggingface_hub
    import numpy
    from huggingface_hub import constants as hf_constants
    import onnxruntime

    from cfcsp_sdk import __version__
    from cfcsp_sdk.backends import available_backends
    from cfcsp_sdk.hub import DEFAULT_MODEL_PACKAGE_DIR, offline_mode

    info = {
        "cfcsp_sdk": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "huggingface_hub": huggingface_hub.__version__,
        "hf_cache_dir": hf_constants.HF_HUB_CACHE,
        "hf_offline": offline_mode(),
        "backends": available_backends(),
        "default_model": DEFAULT_MODEL_PACKAGE_DIR,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.cuda.is_available()
    except ImportError:
        info["torch"] = None
    print(json.dumps(info, indent=1))
    return 0


def cmd_convert_paddle(args: argparse.Namespace) -> int:
    from cfcsp_sdk.convert_paddle import convert_paddle

    for path in (args.coarse, args.negative):
        if not Path(path).is_file():
            raise CfcspError(f"no such file: {path}")
    out = convert_paddle(args.coarse, args.negative, args.out, prefer_ema=args.ema)
    print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from cfcsp_sdk.config import CONFIG_NAME, ModelConfig
    from cfcsp_sdk.hub import upload_folder

    folder = Path(args.folder)
    config = ModelConfig.from_file(folder / CONFIG_NAME)  # refuse to publish an invalid repository
    missing = [f"{n}{s}" for n in config.networks for s in (".onnx", ".safetensors") if not (folder / f"{n}{s}").is_file()]
    if missing:
        raise CfcspError(f"{folder} lacks {', '.join(missing)}; a published model needs both weight formats")
    url = upload_folder(folder, args.repo_id, revision=args.revision, token=args.token, private=args.private or None,
                        commit_message=args.message)
    print(url)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cfcsp", description="Facial expression recognition with CFC-SP.")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="recognise expressions in an image or a video")
    pr.add_argument("input", help="image or video file, a video URL (http(s)://, rtsp://) or a camera index "
                                  "(with --max-frames)")
    pr.add_argument("--output", "-o", help="write results: X.csv, X.json, or X.txt (ABAW label file, video)")
    pr.add_argument("--annotate", help="write an annotated copy (OUT.mp4 for videos, OUT.png/jpg for images)")
    pr.add_argument("--plot", help="write a per-track timeline plot (PNG, videos)")
    pr.add_argument("--model", default=None, help="model folder or Hub repo id (default: the bundled model)")
    pr.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    pr.add_argument("--backend", default="onnx", help="onnx (default), torch, or a plug-in backend")
    pr.add_argument("--detector", default="mtcnn", choices=["mtcnn", "yunet", "aligned"],
                    help="face detector: mtcnn (default, offline), yunet (faster; Hub file or --detector-model)")
    pr.add_argument("--detector-model", default=None, help="a YuNet .onnx file (implies --detector yunet)")
    pr.add_argument("--fps", type=float, default=None, help="sample video frames at this rate")
    pr.add_argument("--stride", type=int, default=1, help="or keep every N-th video frame")
    pr.add_argument("--max-frames", type=int, default=None, help="stop after this many sampled video frames")
    pr.add_argument("--detect-every", type=int, default=None, metavar="K",
                    help="video: detect faces on every K-th sampled frame and carry them between by optical "
                         "flow (default 1: every frame)")
    pr.add_argument("--offline", action="store_true", help="use only local files and the Hub cache")
    pr.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_predict)
    cv = sub.add_parser("convert-paddle", help="convert the authors' Paddle Swin-S checkpoints to a model repository")
    cv.add_argument("--coarse", required=True, help="ABAW3_SwinS_Coarse_Iter10k.pdparams")
    cv.add_argument("--negative", required=True, help="ABAW3_SwinS_Negative_Iter20k.pdparams")
    cv.add_argument("--out", required=True, help="output folder")
    cv.add_argument("--ema", action="store_true", help="take 'model_ema' weights where a checkpoint has both")
    cv.set_defaults(func=cmd_convert_paddle)
    push = sub.add_parser("push", help="publish a model repository folder on the Hugging Face Hub")
    push.add_argument("folder")
    push.add_argument("repo_id")
    push.add_argument("--revision", default=None, help="branch to push to (created if needed)")
    push.add_argument("--private", action="store_true")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN / saved login)")
    push.add_argument("--message", default="Upload cfcsp-sdk model repository")
    push.set_defaults(func=cmd_push)
    info = sub.add_parser("info", help="versions, backends, providers and cache folder")
    info.set_defaults(func=cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CfcspError as exc:
        print(f"cfcsp: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full or a folder removed mid-run: say so without a traceback
        print(f"cfcsp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
