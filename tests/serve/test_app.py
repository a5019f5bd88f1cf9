"""The REST routes of `cfcsp serve` through a real uvicorn server and a real HTTP client (httpx)."""

from __future__ import annotations

import io
import json
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from serve.live_server import start_server


def _wait_done(client, url, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{url}/v1/videos/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_health_model_and_docs(server, recognizer_factory):
    with httpx.Client(timeout=30) as c:
        assert c.get(f"{server.url}/v1/health").json() == {"status": "ok"}
        model = c.get(f"{server.url}/v1/model").json()
        assert model["labels"] == list(recognizer_factory().labels) and model["backend"] == "onnx"
        assert c.get(f"{server.url}/docs").status_code == 200
        paths = c.get(f"{server.url}/openapi.json").json()["paths"]
        for route in ("/v1/image", "/v1/videos"):  # /docs offers a file field for the uploads
            body = paths[route]["post"]["requestBody"]["content"]
            assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
        page = c.get(f"{server.url}/")
        assert page.status_code == 200 and "getUserMedia" in page.text and "/v1/stream" in page.text


def test_image_as_multipart_and_as_raw_bytes(server, media, recognizer_factory):
    path = media("multi_face.jpg")
    expected = json.loads(recognizer_factory().predict_image(path).to_json())
    with httpx.Client(timeout=60) as c:
        multipart = c.post(f"{server.url}/v1/image", files={"file": ("group.jpg", path.read_bytes(), "image/jpeg")})
        raw = c.post(f"{server.url}/v1/image", content=path.read_bytes(), headers={"content-type": "image/jpeg"})
    assert multipart.status_code == raw.status_code == 200
    assert multipart.json() == raw.json() == expected and len(expected["faces"]) == 5


def test_bad_uploads_get_their_4xx_and_the_server_goes_on(server, media, tmp_path):
    with httpx.Client(timeout=60) as c:
        r = c.post(f"{server.url}/v1/image", files={"file": ("notes.txt", b"not an image at all", "text/plain")})
        assert r.status_code == 415 and r.json()["error"]["type"] == "MediaError"
        assert c.post(f"{server.url}/v1/image", content=b"").status_code == 400
        # a truncated JPEG: its header is fine, its pixels are not there
        cut = media("single_face.jpg").read_bytes()[:600]
        r = c.post(f"{server.url}/v1/image", content=cut)
        assert 400 <= r.status_code < 500 and "error" in r.json()
        # 20,000 x 20,000 pixels in a small PNG: refused from its header, never decoded
        big = tmp_path / "big.png"
        Image.new("1", (20000, 20000)).save(big)
        r = c.post(f"{server.url}/v1/image", content=big.read_bytes())
        assert r.status_code == 413 and "400000000 pixels" in r.json()["error"]["message"]

        # 1 GB announced: refused from its Content-Length before the body is read
        def gigabyte():
            chunk = bytes(1 << 20)
            for _ in range(1024):
                yield chunk

        try:
            r = c.post(f"{server.url}/v1/videos", content=gigabyte(), headers={"content-length": str(1 << 30)})
            assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
        except (httpx.WriteError, httpx.RemoteProtocolError):
            pass  # the server answered 413 and closed while the client was still sending
        # streamed without a length: refused once the limit is passed
        try:
            r = c.post(f"{server.url}/v1/videos", content=gigabyte())
            assert r.status_code == 413
        except (httpx.WriteError, httpx.RemoteProtocolError):
            pass
        assert c.get(f"{server.url}/v1/health").status_code == 200
        good = c.post(f"{server.url}/v1/image", content=media("single_face.jpg").read_bytes())
        assert good.status_code == 200 and len(good.json()["faces"]) == 1


def test_video_job_results_match_predict_video(server, media, recognizer_factory):
    path = media("single_face.mp4")
    expected = recognizer_factory().predict_video(path)
    with httpx.Client(timeout=60) as c:
        r = c.post(f"{server.url}/v1/videos", files={"file": ("clip.mp4", path.read_bytes(), "video/mp4")})
        assert r.status_code == 202
        job = _wait_done(c, server.url, r.json()["id"])
        assert job["state"] == "done" and job["progress"] == {"frames_done": 72, "frames_total": 72}
        base = f"{server.url}/v1/videos/{job['id']}/result"
        assert c.get(f"{base}?format=csv").text == expected.to_csv()
        assert c.get(f"{base}?format=abaw").text == expected.to_abaw()
        got = c.get(base).json()
        assert [row["label"] for row in got["rows"]] == [row.label for row in expected.rows]
        assert c.get(f"{base}?format=xml").status_code == 400
        assert c.delete(f"{server.url}/v1/videos/{job['id']}").json()["deleted"] is True
        gone = c.get(f"{server.url}/v1/videos/{job['id']}")
        assert gone.status_code == 404 and "restart" in gone.json()["error"]["message"]
        assert c.delete(f"{server.url}/v1/videos/{job['id']}").status_code == 404
    assert not (server.settings.work_dir / "jobs" / job["id"]).exists()


def test_a_cancelled_job_stops_and_leaves_no_files(server, media):
    with httpx.Client(timeout=60) as c:
        r = c.post(
            f"{server.url}/v1/videos", content=media("face_noface.mov").read_bytes(), headers={"x-filename": "long.mov"}
        )
        job_id = r.json()["id"]
        assert c.get(f"{server.url}/v1/videos/{job_id}/result").status_code in (409, 200)
        assert c.delete(f"{server.url}/v1/videos/{job_id}").status_code == 200
        assert c.get(f"{server.url}/v1/videos/{job_id}").status_code == 404
        folder = server.settings.work_dir / "jobs" / job_id
        deadline = time.monotonic() + 30
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not folder.exists()
        # garbage as a video: the job fails with its reason, the pool goes on
        bad = c.post(
            f"{server.url}/v1/videos", content=np.random.default_rng(0).bytes(5000), headers={"x-filename": "x.mp4"}
        ).json()
        job = _wait_done(c, server.url, bad["id"])
        assert job["state"] == "failed" and job["error"] and str(server.settings.work_dir) not in job["error"]
        assert c.get(f"{server.url}/v1/videos/{bad['id']}/result").status_code == 409


def test_token_is_required_everywhere_but_health(recognizer_factory, media, tmp_path):
    from cfcsp_sdk.serve import ServeSettings

    srv, stop = start_server(ServeSettings(port=0, token="s3cret", work_dir=tmp_path), recognizer_factory)
    try:
        with httpx.Client(timeout=60) as c:
            assert c.get(f"{srv.url}/v1/health").status_code == 200
            assert c.get(f"{srv.url}/v1/model").status_code == 401
            wrong = c.get(f"{srv.url}/v1/model", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "Unauthorized"
            r = c.post(
                f"{srv.url}/v1/image",
                content=media("single_face.jpg").read_bytes(),
                headers={"authorization": "Bearer s3cret"},
            )
            assert r.status_code == 200
            assert c.get(f"{srv.url}/v1/model?token=s3cret").status_code == 200
    finally:
        stop()


def test_limits_are_checked(tmp_path):
    from cfcsp_sdk import InvalidInputError
    from cfcsp_sdk.serve import ServeSettings

    for bad in ({"port": 70000}, {"workers": 0}, {"max_upload_bytes": -1}, {"token": " "}, {"max_jobs": True}):
        with pytest.raises(InvalidInputError):
            ServeSettings(**bad)


def test_png_frames_decode_like_the_video(media):
    from cfcsp_sdk.serve.live import decode_frame

    img = np.asarray(Image.open(media("single_face.jpg")).convert("RGB"))[..., ::-1]
    buf = io.BytesIO()
    Image.fromarray(img[..., ::-1]).save(buf, format="PNG")
    np.testing.assert_array_equal(decode_frame(buf.getvalue(), 10**8), img)


def test_a_raw_upload_keeps_its_name_and_its_sampling(server, media, recognizer_factory):
    path = media("single_face.mp4")
    expected = recognizer_factory().predict_video(path, fps=5)
    with httpx.Client(timeout=60) as c:
        assert c.post(f"{server.url}/v1/videos?fps=-1", content=b"x").status_code == 400  # before the upload
        r = c.post(f"{server.url}/v1/videos?fps=5", content=path.read_bytes(), headers={"x-filename": "my clip.mp4"})
        job = _wait_done(c, server.url, r.json()["id"])
        assert job["filename"] == "my clip.mp4" and job["state"] == "done"
        got = c.get(f"{server.url}/v1/videos/{job['id']}/result").json()
        assert got["source"] == "my clip.mp4" and len(got["rows"]) == len(expected.rows) == 12
        assert c.get(f"{server.url}/v1/videos/{job['id']}/result?format=csv").text == expected.to_csv()


def test_tokens_are_kept_out_of_the_log():
    import logging

    from cfcsp_sdk.serve.app import _RedactToken

    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5", "/v1/stream?token=s3cret&x=1"),
        None,
    )
    assert _RedactToken().filter(record) and record.getMessage() == (
        '127.0.0.1:5 - "WebSocket /v1/stream?token=***&x=1" [accepted]'
    )
