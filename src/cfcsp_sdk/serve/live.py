"""One WebSocket connection of ``/v1/stream``: frames in, rows out, the oldest waiting frame dropped
when the client sends faster than the model runs.

Protocol (documented in docs/serve.md):

* client -> server, binary: one frame, JPEG or PNG bytes.
* client -> server, text: ``{"time": seconds, "index": n}`` describing the next binary frame (both
  optional: by default the time since the connection opened and the next number), or
  ``{"type": "end"}``: finish the frames waiting, answer ``{"type": "end", ...}`` and close.
* server -> client, text: ``{"type": "frame", "index", "time", "rows": [FaceRow.to_dict()...],
  "dropped", "waiting", "processing_ms"}`` per frame processed, ``{"type": "error", "error":
  {"type", "message"}, "index"}`` for a frame or message that could not be used (the connection
  goes on), and ``{"type": "end", "frames", "dropped"}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cfcsp_sdk.errors import CfcspError, InvalidInputError, MediaError
from cfcsp_sdk.io.images import header_pixels
from cfcsp_sdk.io.video import Frame


def decode_frame(data: bytes, max_pixels: int) -> np.ndarray:
    """A JPEG or PNG message as a BGR uint8 array; MediaError / InvalidInputError for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        kind = "JPEG"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        kind = "PNG"
    else:
        raise MediaError("a frame must be JPEG or PNG bytes")
    pixels = header_pixels(data)
    if pixels is None:
        raise MediaError(f"corrupt {kind} frame (its header cannot be read)")
    if pixels > max_pixels:
        raise InvalidInputError(f"a frame of {pixels} pixels exceeds the limit of {max_pixels} pixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"corrupt {kind} frame")
    return image


@dataclass
class _Waiting:
    decoded: Future[np.ndarray]  # decoding starts on arrival, while the model works on earlier frames
    time: float | None
    index: int | None
    received: float


class LiveSession:
    """The state of one connection: its push pipeline, its waiting frames and its counters.

    Args:
        make_pipeline: makes the connection's causal :class:`~cfcsp_sdk.pipeline.VideoPipeline` (again, with
            new tracks, if the model fails inside it).
        executor: where the model runs (shared by all connections: one model at a time).
        decoder: where frames are decoded as they arrive (shared too).
        max_waiting: frames waiting for the model; the oldest is dropped beyond it.
        max_pixels, max_bytes: limits of one frame.
    """

    def __init__(
        self,
        make_pipeline: Callable[[], Any],
        executor: Executor,
        decoder: Executor,
        max_waiting: int,
        max_pixels: int,
        max_bytes: int,
    ) -> None:
        self.make_pipeline = make_pipeline
        self.pipeline, self.executor, self.decoder = make_pipeline(), executor, decoder
        self.max_pixels, self.max_bytes = max_pixels, max_bytes
        self.waiting: deque[_Waiting] = deque()
        self.max_waiting = max_waiting
        self.dropped = 0
        self.frames = 0
        self.ended = False
        self._next_meta: dict[str, Any] = {}
        self._ready = asyncio.Event()
        self._opened = time.monotonic()
        self._next_index = 0
        self._last_time = -math.inf

    # ---- input ------------------------------------------------------------------------------
    def on_text(self, text: str) -> dict[str, Any] | None:
        """A control message; returns an error reply for a bad one."""
        try:
            msg = json.loads(text)
        except ValueError:
            return error_reply(InvalidInputError("a text message must be JSON"))
        if not isinstance(msg, dict):
            return error_reply(InvalidInputError("a text message must be a JSON object"))
        if msg.get("type") == "end":
            self.ended = True
            self._ready.set()
            return None
        unknown = set(msg) - {"time", "index", "type"}
        if unknown or msg.get("type", "frame") != "frame":
            return error_reply(
                InvalidInputError(f"unknown message fields or type: {sorted(unknown) or msg.get('type')}")
            )
        t, i = msg.get("time"), msg.get("index")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
            return error_reply(InvalidInputError(f"time must be a finite number of seconds, got {t!r:.40}"))
        if i is not None and (isinstance(i, bool) or not isinstance(i, int) or i < 0):
            return error_reply(InvalidInputError(f"index must be a non-negative integer, got {i!r:.40}"))
        self._next_meta = {"time": t, "index": i}
        return None

    def on_bytes(self, data: bytes) -> dict[str, Any] | None:
        """A frame: queued, dropping the oldest waiting one when full; returns an error reply for a bad one."""
        meta, self._next_meta = self._next_meta, {}
        if len(data) > self.max_bytes:
            return error_reply(
                InvalidInputError(f"a frame of {len(data)} bytes exceeds {self.max_bytes} bytes"), meta.get("index")
            )
        decoded = self.decoder.submit(decode_frame, data, self.max_pixels)
        self.waiting.append(_Waiting(decoded, meta.get("time"), meta.get("index"), time.monotonic()))
        while len(self.waiting) > self.max_waiting:
            self.waiting.popleft().decoded.cancel()
            self.dropped += 1
        self._ready.set()
        return None

    # ---- processing -------------------------------------------------------------------------
    async def next_reply(self) -> dict[str, Any] | None:
        """Wait for a frame and process it; ``None`` once the client has ended and nothing waits."""
        while not self.waiting:
            if self.ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        item = self.waiting.popleft()
        loop = asyncio.get_running_loop()
        try:
            image = await asyncio.wrap_future(item.decoded)
            return await loop.run_in_executor(self.executor, self._process, item, image)
        except CfcspError as exc:
            return error_reply(exc, item.index)

    def _process(self, item: _Waiting, image: np.ndarray) -> dict[str, Any]:
        t0 = time.perf_counter()
        index = item.index if item.index is not None else self._next_index
        t = item.time if item.time is not None else item.received - self._opened
        try:
            done = self.pipeline.push(Frame(index=index, time=float(t), image=image))
        except CfcspError:
            if self.pipeline.failed is not None:  # the model failed mid-frame: the next frame starts afresh
                self.pipeline = self.make_pipeline()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a backend raises, the connection goes on
            self.pipeline = self.make_pipeline()
            raise CfcspError(f"the model failed on this frame ({type(exc).__name__}); tracks start again") from exc
        self._next_index = index + 1
        self.frames += 1
        rows = [r.to_dict() for d in done for r in d.rows]
        return {
            "type": "frame",
            "index": index,
            "time": t,
            "rows": rows,
            "dropped": self.dropped,
            "waiting": len(self.waiting),
            "processing_ms": round((time.perf_counter() - t0) * 1000, 2),
            "latency_ms": round((time.monotonic() - item.received) * 1000, 2),
        }

    def end_reply(self) -> dict[str, Any]:
        return {"type": "end", "frames": self.frames, "dropped": self.dropped}


def error_reply(exc: Exception, index: int | None = None) -> dict[str, Any]:
    kind = getattr(exc, "kind", None) or type(exc).__name__
    return {"type": "error", "error": {"type": kind, "message": str(exc)}, "index": index}
