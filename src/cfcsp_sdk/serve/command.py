"""The ``cfcsp serve`` sub-command: its options and what it runs (FastAPI is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cfcsp_sdk.serve.settings import ServeSettings

_DEFAULTS = ServeSettings()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``cfcsp`` command's sub-parsers."""
    sv = sub.add_parser(
        "serve",
        help="an HTTP and WebSocket service with a live camera page (pip install '.[serve]')",
        description="Serve the model over HTTP and WebSocket, with a page that labels a camera "
        "live at /. See docs/serve.md.",
    )
    sv.add_argument("--host", default=_DEFAULTS.host, help="address to listen on (default 127.0.0.1: loopback only)")
    sv.add_argument("--port", type=int, default=_DEFAULTS.port, help="port (default 8000)")
    sv.add_argument("--model", default=None, help="model folder or Hub repo id (default: the bundled model)")
    sv.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    sv.add_argument("--backend", default="onnx", help="onnx (default), torch, or a plug-in backend")
    sv.add_argument("--detector", default="mtcnn", help="face detector (default mtcnn)")
    sv.add_argument("--offline", action="store_true", help="use only local files and the Hub cache")
    sv.add_argument(
        "--label-offset",
        action="append",
        default=None,
        metavar="LABEL=OFFSET",
        help="add OFFSET to LABEL's logit (Neutral=-0.5: name an emotion on milder faces); repeatable",
    )
    sv.add_argument("--workers", type=int, default=_DEFAULTS.workers, help="video jobs run at once (default 1)")
    sv.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' (or ?token=TOKEN on the page and WebSocket)",
    )
    sv.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="folder for uploads and results (default: a temporary folder removed at shutdown)",
    )
    limits = sv.add_argument_group("limits (docs/serve.md)")
    limits.add_argument(
        "--max-upload-mb",
        type=float,
        default=_DEFAULTS.max_upload_bytes / 2**20,
        help="largest upload in MiB (default 512)",
    )
    limits.add_argument(
        "--max-image-pixels",
        type=int,
        default=_DEFAULTS.max_image_pixels,
        help="largest uploaded image, width x height (default 50,000,000)",
    )
    limits.add_argument(
        "--max-frame-pixels",
        type=int,
        default=_DEFAULTS.max_frame_pixels,
        help="largest WebSocket frame, width x height (default 3840 x 2160)",
    )
    limits.add_argument(
        "--idle-seconds",
        type=int,
        default=_DEFAULTS.idle_seconds,
        help="close a WebSocket that sends nothing for this long (default 60)",
    )
    limits.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: the page's token is part of its URLs)",
    )
    limits.add_argument(
        "--max-frame-mb",
        type=float,
        default=_DEFAULTS.max_frame_bytes / 2**20,
        help="largest WebSocket frame in MiB (default 8)",
    )
    limits.add_argument(
        "--max-waiting-frames",
        type=int,
        default=_DEFAULTS.max_waiting_frames,
        help="frames a connection may have waiting; the oldest is dropped beyond (default 2)",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=_DEFAULTS.max_connections,
        help="WebSocket connections at once (default 16)",
    )
    limits.add_argument(
        "--max-jobs", type=int, default=_DEFAULTS.max_jobs, help="video jobs queued or running at once (default 8)"
    )
    sv.set_defaults(func=run)
    return sv


def settings_from(args: argparse.Namespace) -> ServeSettings:
    """The settings the command line asks for (InvalidInputError for a bad one)."""
    return ServeSettings(
        host=args.host,
        port=args.port,
        token=args.token,
        workers=args.workers,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_image_pixels=args.max_image_pixels,
        max_frame_bytes=int(args.max_frame_mb * 2**20),
        max_waiting_frames=args.max_waiting_frames,
        max_connections=args.max_connections,
        max_jobs=args.max_jobs,
        work_dir=args.work_dir,
        max_frame_pixels=args.max_frame_pixels,
        idle_seconds=args.idle_seconds,
        access_log=args.access_log,
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        from cfcsp_sdk.serve.app import serve
    except ImportError as exc:
        print(f"cfcsp serve: {exc}", file=sys.stderr)
        return 2
    from cfcsp_sdk.cascade import parse_label_offset
    from cfcsp_sdk.recognizer import Recognizer

    options = {
        "revision": args.revision,
        "backend": args.backend,
        "detector": args.detector,
        "local_files_only": args.offline,
        "label_offsets": dict(parse_label_offset(item) for item in args.label_offset or ()),
    }
    loaded = [Recognizer(args.model, **options)]  # a model that does not load fails here, before the port is taken

    def factory() -> Recognizer:  # the first call (the live stream's) gets the one loaded above
        return loaded.pop() if loaded else Recognizer(args.model, **options)

    if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.token is None:
        print(
            f"cfcsp serve: listening on {settings.host} without --token: anyone who reaches the port can use it",
            file=sys.stderr,
        )
    serve(settings, factory)
    return 0
