"""The service's settings and limits, checked once when the app is made."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from cfcsp_sdk.errors import InvalidInputError, require_positive_int


@dataclass(frozen=True)
class ServeSettings:
    """What ``cfcsp serve`` runs with. Every limit answers with a 4xx JSON error when reached.

    Attributes:
        host, port: where uvicorn listens (loopback by default: put a reverse proxy in front for others).
        token: when set, every request needs ``Authorization: Bearer <token>`` (WebSockets and the page
            may pass ``?token=<token>`` instead, as browsers cannot set headers on a WebSocket).
        workers: video jobs run at the same time (each in its own thread with its own Recognizer).
        max_upload_bytes: largest request body (image or video upload), bytes.
        max_image_pixels: largest uploaded image (width x height) decoded.
        max_frame_pixels: largest WebSocket frame (width x height) decoded (default 3840 x 2160).
        max_frame_bytes: largest WebSocket message, bytes.
        max_waiting_frames: frames of one connection waiting for the model; when a client sends faster
            than the model runs, the oldest waiting frame is dropped (and counted in the replies).
        max_connections: WebSocket connections at once.
        max_jobs: video jobs queued or running at once; finished jobs are kept until deleted, the
            oldest finished ones removed beyond ``keep_finished_jobs``.
        keep_finished_jobs: finished (done, failed) jobs whose results are kept.
        idle_seconds: a WebSocket that sends nothing for this long is closed (code 1008), so idle clients
            cannot hold every connection.
        access_log: uvicorn's access log (off by default: the page passes the token in URLs).
        work_dir: folder for uploads and results (default: a new temporary folder, removed at shutdown).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    workers: int = 1
    max_upload_bytes: int = 512 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_frame_pixels: int = 3840 * 2160
    max_frame_bytes: int = 8 * 1024 * 1024
    max_waiting_frames: int = 2
    max_connections: int = 16
    max_jobs: int = 8
    keep_finished_jobs: int = 100
    idle_seconds: int = 60
    work_dir: Path | None = None
    access_log: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in ("host", "token", "work_dir", "access_log"):
                continue
            if f.name == "port":
                if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
                    raise InvalidInputError(f"port must be an integer in 0..65535, got {self.port!r}")
                continue
            require_positive_int(f.name, getattr(self, f.name))
        if self.token is not None and not self.token.strip():
            raise InvalidInputError("token must not be empty")
        if not isinstance(self.host, str) or not self.host:
            raise InvalidInputError(f"host must be a host name or address, got {self.host!r}")
