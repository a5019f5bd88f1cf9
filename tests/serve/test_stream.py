"""WS /v1/stream through a real uvicorn server and a real WebSocket client (websockets), on real video."""

from __future__ import annotations

import asyncio
import contextlib
import json

import cv2
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from cfcsp_sdk.io.video import VideoReader


def _png(image) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _rows_key(rows):
    return [(r["frame"], r["track"], r["label"], r["raw_label"]) for r in rows]


@pytest.fixture(scope="module")
def clip(media):
    return media("single_face.mp4")


@pytest.fixture(scope="module")
def frames(clip):
    return list(VideoReader(clip, max_frames=24))


def test_rows_match_stream_in_process(server, recognizer_factory, clip, frames):
    expected = {f.index: rows for f, rows in recognizer_factory().stream(clip, max_frames=24)}
    with connect(f"{server.ws_url}/v1/stream") as ws:
        for f in frames:  # one frame at a time: nothing waits, nothing is dropped
            ws.send(json.dumps({"time": f.time, "index": f.index}))
            ws.send(_png(f.image))
            reply = json.loads(ws.recv(timeout=60))
            assert reply["type"] == "frame" and reply["index"] == f.index and reply["dropped"] == 0
            want = [r.to_dict() for r in expected[f.index]]
            assert _rows_key(reply["rows"]) == _rows_key(want)
            for got, exp in zip(reply["rows"], want):
                if exp["probabilities"] is not None:
                    np.testing.assert_allclose(
                        [got["probabilities"][k] for k in exp["probabilities"]],
                        list(exp["probabilities"].values()),
                        atol=1e-6,
                    )
                    np.testing.assert_allclose(got["box"], exp["box"], atol=1e-3)
        ws.send(json.dumps({"type": "end"}))
        end = json.loads(ws.recv(timeout=60))
        assert end == {"type": "end", "frames": len(frames), "dropped": 0}


def test_a_fast_client_gets_the_newest_frames_and_the_drop_count(server, frames):
    images = [_png(f.image) for f in frames]
    with connect(f"{server.ws_url}/v1/stream") as ws:
        for f, data in zip(frames, images):  # as fast as the socket takes them
            ws.send(json.dumps({"time": f.time, "index": f.index}))
            ws.send(data)
        ws.send(json.dumps({"type": "end"}))
        replies = []
        while True:
            msg = json.loads(ws.recv(timeout=120))
            if msg["type"] == "end":
                break
            replies.append(msg)
    done = [r["index"] for r in replies if r["type"] == "frame"]
    assert done == sorted(done) and done[-1] == frames[-1].index  # the newest frame is never dropped
    assert msg["dropped"] > 0 and msg["frames"] + msg["dropped"] == len(frames) == len(done) + msg["dropped"]
    assert replies[-1]["dropped"] == msg["dropped"]


def test_garbage_gets_an_error_and_the_connection_goes_on(server, frames):
    with connect(f"{server.ws_url}/v1/stream") as ws:
        ws.send(np.random.default_rng(1).bytes(3000))
        assert json.loads(ws.recv(timeout=30))["error"]["type"] == "MediaError"
        ws.send(b"\xff\xd8\xff" + bytes(100))  # a JPEG signature and nothing behind it
        assert json.loads(ws.recv(timeout=30))["type"] == "error"
        ws.send("not json")
        assert json.loads(ws.recv(timeout=30))["error"]["type"] == "InvalidInputError"
        ws.send(json.dumps({"time": "soon"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "error"
        ws.send(json.dumps({"index": 5, "time": 0.0}))
        ws.send(_png(frames[0].image))
        assert json.loads(ws.recv(timeout=60))["index"] == 5
        ws.send(json.dumps({"index": 3, "time": 0.1}))  # indices must increase
        ws.send(_png(frames[1].image))
        err = json.loads(ws.recv(timeout=60))
        assert err["type"] == "error" and "increase" in err["error"]["message"]
        ws.send(_png(frames[2].image))  # the next number after the last good one
        assert json.loads(ws.recv(timeout=60))["index"] == 6


def test_a_client_that_vanishes_mid_frame_costs_nothing_else(server, frames):
    import httpx

    for _ in range(3):
        with connect(f"{server.ws_url}/v1/stream") as ws:
            ws.send(json.dumps({"time": 0.0}))
            ws.send(_png(frames[0].image)[:5000])  # half a frame, then gone
    with contextlib.suppress(OSError, ConnectionClosed):
        with connect(f"{server.ws_url}/v1/stream") as ws:
            ws.send(_png(frames[0].image))
            ws.socket.close()  # no closing handshake at all
    assert httpx.get(f"{server.url}/v1/health", timeout=30).status_code == 200
    with connect(f"{server.ws_url}/v1/stream") as ws:
        ws.send(_png(frames[0].image))
        assert json.loads(ws.recv(timeout=60))["type"] == "frame"


def test_fifty_connections_each_get_an_answer_or_their_error(server, frames):
    from websockets.asyncio.client import connect as aconnect

    data = _png(cv2.resize(frames[0].image, (160, 90)))

    async def one(i):
        try:
            async with aconnect(f"{server.ws_url}/v1/stream", open_timeout=60) as ws:
                await ws.send(data)
                msg = json.loads(await asyncio.wait_for(ws.recv(), 120))
                return msg["type"] if msg["type"] == "frame" else msg["error"]["type"]
        except ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else None}"

    async def all_of_them():
        return await asyncio.gather(*(one(i) for i in range(50)))

    answers = asyncio.run(all_of_them())
    # over the limit: the error, or the close code 1013 (try again later) when the client's frame went
    # out after the server had closed
    assert set(answers) <= {"frame", "TooManyConnections", "closed 1013"}
    assert len(answers) == 50 and answers.count("frame") >= server.settings.max_connections // 2
    with connect(f"{server.ws_url}/v1/stream") as ws:  # and the server keeps serving
        ws.send(data)
        assert json.loads(ws.recv(timeout=60))["type"] == "frame"


def test_a_wrong_token_closes_the_socket(recognizer_factory, tmp_path):
    from websockets.exceptions import InvalidStatus

    from cfcsp_sdk.serve import ServeSettings
    from serve.live_server import start_server

    srv, stop = start_server(ServeSettings(port=0, token="t0k", work_dir=tmp_path), recognizer_factory)
    try:
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            with connect(f"{srv.ws_url}/v1/stream?token=wrong") as ws:
                ws.recv(timeout=10)
        with connect(f"{srv.ws_url}/v1/stream?token=t0k") as ws:
            ws.send(json.dumps({"type": "end"}))
            assert json.loads(ws.recv(timeout=30))["type"] == "end"
        with connect(f"{srv.ws_url}/v1/stream", additional_headers={"Authorization": "Bearer t0k"}) as ws:
            ws.send(json.dumps({"type": "end"}))
            assert json.loads(ws.recv(timeout=30))["type"] == "end"
    finally:
        stop()


def test_idle_clients_and_huge_frames_are_refused(recognizer_factory, frames, tmp_path):
    from cfcsp_sdk.serve import ServeSettings
    from serve.live_server import start_server

    srv, stop = start_server(
        ServeSettings(port=0, idle_seconds=1, max_frame_pixels=640 * 360, work_dir=tmp_path), recognizer_factory
    )
    try:
        with connect(f"{srv.ws_url}/v1/stream") as ws:
            big = _png(cv2.resize(frames[0].image, (1280, 720)))
            ws.send(big)
            err = json.loads(ws.recv(timeout=30))
            assert err["type"] == "error" and "921600 pixels exceeds the limit of 230400" in err["error"]["message"]
            ws.send(_png(frames[0].image))  # 640 x 360: within the limit
            assert json.loads(ws.recv(timeout=60))["type"] == "frame"
            idle = json.loads(ws.recv(timeout=30))  # then nothing sent for a second
            assert idle["error"]["type"] == "IdleTimeout"
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=30)
    finally:
        stop()
