import csv
import json
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np


def cfcsp(*args, check=True, python_prelude=None):
    cmd = [sys.executable, "-m", "cfcsp_sdk.cli", *map(str, args)]
    if python_prelude:  # run main() after some setup code, in a fresh interpreter
        cmd = [
            sys.executable,
            "-c",
            f"{python_prelude}; import sys; from cfcsp_sdk.cli import main; sys.exit(main({[str(a) for a in args]!r}))",
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_predict_video_with_all_outputs(media, tmp_path):
    out = cfcsp(
        "predict",
        media("single_face.mp4"),
        "--fps",
        10,
        "--output",
        tmp_path / "r.csv",
        "--annotate",
        tmp_path / "a.mp4",
        "--plot",
        tmp_path / "p.png",
    )
    (summary,) = json_lines(out.stdout)  # one JSON line per video
    assert summary["frames_with_face"] == summary["frames_processed"] == 24
    assert summary["source"].endswith("single_face.mp4") and summary["tracks"]["0"]["frames"] == 24
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 25
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 72
    assert cv2.imread(str(tmp_path / "p.png")).shape[1] > 500
    assert "frame" in out.stderr  # the progress bar


def test_predict_image_prints_one_line_per_face(media, tmp_path):
    out = cfcsp("predict", media("multi_face.jpg"), "--output", tmp_path / "r.json", "--annotate", tmp_path / "a.png")
    faces = json_lines(out.stdout)
    assert [f["face"] for f in faces] == [0, 1, 2, 3, 4]
    assert all(f["source"].endswith("multi_face.jpg") and 0 < f["probability"] <= 1 for f in faces)
    assert len(json.loads((tmp_path / "r.json").read_text())["faces"]) == 5
    assert cv2.imread(str(tmp_path / "a.png")).shape == (667, 1000, 3)
    cfcsp("predict", media("single_face.mp4"), "-q", "--stride", 8, "--output", tmp_path / "abaw.txt")
    assert len((tmp_path / "abaw.txt").read_text().splitlines()) == 73
    p = cfcsp("predict", media("free-mountain-vector-01.jpg"))
    assert p.stdout == "" and "no face found in" in p.stderr


def test_yunet_detector_file(media, tmp_path, yunet_dynamic):
    out = cfcsp("predict", media("multi_face.jpg"), "--detector-model", yunet_dynamic)
    assert len(json_lines(out.stdout)) == 5


def test_errors_are_one_line_and_exit_2(tmp_path):
    p = cfcsp("predict", tmp_path / "missing.mp4", check=False)
    assert p.returncode == 2 and p.stderr.startswith("cfcsp: error: no such file")
    (tmp_path / "junk.bin").write_bytes(b"\x01\x02" * 500)
    p = cfcsp("predict", tmp_path / "junk.bin", check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = cfcsp("predict", tmp_path / "junk.bin", "--fps", 5, "--stride", 2, check=False)
    assert p.returncode == 2 and "--fps and --stride" in p.stderr


def test_bad_outputs_fail_before_any_frame_is_read(tmp_path, media):
    video = media("single_face.mp4")
    for option, value, message in [
        ("--output", tmp_path / "no_such_folder" / "r.csv", "does not exist"),
        ("--output", tmp_path / "r.xlsx", "--output must end in"),
        ("--plot", tmp_path / "gone" / "p.png", "does not exist"),
        ("--annotate", tmp_path / "gone" / "a.mp4", "does not exist"),
        ("--annotate", tmp_path / "a.png", "must end in .mp4"),  # was: an MPEG-4 stream named a.png
        ("--annotate", tmp_path / "a.gif", "must end in .mp4"),
    ]:
        p = cfcsp("predict", video, option, value, check=False)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert "frame/s" not in p.stderr  # refused before the progress bar started
    assert list(tmp_path.iterdir()) == []
    image = media("multi_face.jpg")
    p = cfcsp("predict", image, "--annotate", tmp_path / "a.mp4", check=False)
    assert p.returncode == 2 and "--annotate must end in an image suffix" in p.stderr
    p = cfcsp("predict", image, "--output", tmp_path / "labels.txt", check=False)
    assert p.returncode == 2 and "--output must end in" in p.stderr


def test_plot_without_matplotlib_fails_at_once(tmp_path, media):
    # as on the base install: matplotlib cannot be imported
    p = cfcsp(
        "predict",
        media("single_face.mp4"),
        "--output",
        tmp_path / "r.csv",
        "--plot",
        tmp_path / "p.png",
        check=False,
        python_prelude="import sys; sys.modules['matplotlib'] = None",
    )
    assert p.returncode == 2 and "pip install matplotlib" in p.stderr and "frame/s" not in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_several_inputs_folders_and_globs(tmp_path, media):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("single_face.jpg", "multi_face.jpg"):
        shutil.copy(media(name), photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)  # a failing file is reported and skipped
    shutil.copy(media("single_face.mp4"), tmp_path / "clip.mp4")
    (tmp_path / "marked").mkdir()
    p = cfcsp(
        "predict",
        photos,
        str(tmp_path / "*.mp4"),
        "-q",
        "--max-frames",
        3,
        "--output",
        tmp_path / "all.csv",
        "--annotate",
        tmp_path / "marked",
        check=False,
    )
    assert p.returncode == 1, p.stderr
    assert "broken.jpg" in p.stderr and "4 inputs: 3 done, 1 failed" in p.stderr.splitlines()[-1]
    lines = json_lines(p.stdout)
    assert sum(1 for x in lines if x["source"].endswith("multi_face.jpg")) == 5
    assert [x["frames_processed"] for x in lines if x["source"].endswith("clip.mp4")] == [3]
    with open(tmp_path / "all.csv", newline="") as f:
        table = list(csv.DictReader(f))
    sources = [row["source"].rsplit("/", 1)[-1] for row in table]
    assert sources == ["multi_face.jpg"] * 5 + ["single_face.jpg"] + ["clip.mp4"] * 3  # folder sorted, then glob
    assert {"face", "has_face", "frame", "p_Happiness"} <= set(table[0])
    assert sorted(x.name for x in (tmp_path / "marked").iterdir()) == [
        "clip.annotated.mp4",
        "multi_face.annotated.png",
        "single_face.annotated.png",
    ]
    p = cfcsp(
        "predict", photos / "single_face.jpg", photos / "multi_face.jpg", "--annotate", tmp_path / "x.png", check=False
    )
    assert p.returncode == 2 and "existing folder" in p.stderr
    cfcsp("predict", photos / "single_face.jpg", photos / "multi_face.jpg", "--output", tmp_path / "all.json")
    combined = json.loads((tmp_path / "all.json").read_text())
    assert [len(r["faces"]) for r in combined["results"]] == [1, 5] and combined["failed"] == []
    assert combined["results"][0]["source"].endswith("single_face.jpg")  # in the order given


def test_video_urls_and_cameras(tmp_path, media):
    from http_media_server import MediaServer

    clip = media("single_face.mp4")
    with MediaServer(clip.parent) as server:
        out = cfcsp("predict", f"{server.url}/{clip.name}", "-q", "--stride", 12, "--output", tmp_path / "r.csv")
    assert json.loads(out.stdout)["frames_processed"] == 6
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 7
    p = cfcsp("predict", "0", check=False)  # a camera would run forever
    assert p.returncode == 2 and "--max-frames" in p.stderr


def test_max_frames_stops_early(tmp_path, media):
    cfcsp("predict", media("single_face.mp4"), "-q", "--max-frames", 5, "--output", tmp_path / "r.csv")
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 6


def test_info():
    info = json.loads(cfcsp("info").stdout)
    assert "onnx" in info["backends"] and "CPUExecutionProvider" in info["onnxruntime_providers"]


# ---- Ctrl-C (issue 14): one line, exit 130, no traceback, no cut output -----------------------------------
def _interrupt_when(proc, ready, timeout=120):
    """Send SIGINT to ``proc`` as soon as ``ready()`` is true; return (returncode, stderr)."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the condition never came"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_ctrl_c_during_processing_prints_one_line_and_writes_nothing(tiny_repo, tmp_path):
    import os

    import numpy as np

    video = tmp_path / "long.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(1500):
        w.write(np.full((240, 320, 3), i % 200, np.uint8))
    w.release()
    out = tmp_path / "out.csv"
    out.write_text("an earlier run's results\n")
    os.utime(out, (0, 0))
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cfcsp_sdk.cli",
                "predict",
                str(video),
                "--model",
                str(tiny_repo),
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            text=True,
        )
        # the progress bar has counted frames: processing is under way
        rc, _ = _interrupt_when(proc, lambda: any(f" {n}/1500" in err_path.read_text() for n in range(16, 200)))
    err = err_path.read_text()
    assert rc == 130
    assert "Traceback" not in err
    done = re.search(r"cfcsp: interrupted; (\d+) video frames read, nothing written$", err.rstrip())
    assert done and 16 <= int(done.group(1)) < 1500, err[-300:]
    # the earlier output is untouched and no temporary file is left
    assert out.read_text() == "an earlier run's results\n"
    assert sorted(os.listdir(tmp_path)) == ["long.avi", "out.csv", "stderr.txt"]


def test_ctrl_c_during_start_up_prints_one_line(tmp_path):
    """Interrupted while the model downloads (a Hub that accepts and never answers)."""
    import os
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_ENDPOINT": f"http://127.0.0.1:{server.getsockname()[1]}", "HF_HOME": str(tmp_path / "hf")})
    image = tmp_path / "i.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cfcsp_sdk.cli",
            "predict",
            str(image),
            "--model",
            "acme/slow",
            "--output",
            str(tmp_path / "r.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    server.settimeout(120)
    conn, _ = server.accept()  # the CLI is now waiting for the Hub
    try:
        rc, err = _interrupt_when(proc, lambda: True)
    finally:
        conn.close()
        server.close()
    assert rc == 130
    assert "Traceback" not in err and err.strip() == "cfcsp: interrupted; nothing written"
    assert not (tmp_path / "r.json").exists()


def test_the_command_starts_without_heavy_imports():
    """Ctrl-C before main() runs cannot be caught; that window is kept to the interpreter's own start-up
    by importing numpy, OpenCV and the runtimes only inside the command (it was ~0.5 s of imports)."""
    code = (
        "import sys, cfcsp_sdk.cli; "
        "print(sorted(m for m in ('numpy', 'cv2', 'onnxruntime', 'torch', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_detect_every_reaches_the_video_pipeline(tmp_path, tiny_repo, media):
    import csv

    def boxes(name, *extra):
        cfcsp(
            "predict",
            media("single_face.mp4"),
            "--model",
            tiny_repo,
            "-q",
            "--max-frames",
            7,
            "--output",
            tmp_path / name,
            *extra,
        )
        return [tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")) for r in csv.DictReader(open(tmp_path / name))]

    every, third = boxes("a.csv", "--detect-every", 1), boxes("b.csv", "--detect-every", 3)
    assert len(every) == len(third) == 7
    assert [every[k] == third[k] for k in range(7)] == [True, False, False, True, False, False, True]
    default = boxes("c.csv")  # detects on every second frame
    assert [every[k] == default[k] for k in range(7)] == [True, False, True, False, True, False, True]
    p = cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--detect-every", 0, check=False)
    assert p.returncode == 2 and "detect_every" in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ---- issue 15: real-world media ---------------------------------------------------------------------------
def _png_header_only_huge(path, width=14200, height=14200):
    """A valid grey PNG of ``width`` x ``height`` (201 megapixels), written row by row in little memory."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z, row, parts = zlib.compressobj(9), b"\x00" * (width + 1), []
    for _ in range(height):
        parts.append(z.compress(row))
    parts.append(z.flush())
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )
    return path


def test_images_the_api_refuses_are_never_retried_as_videos(tiny_repo, media, tmp_path):
    import numpy as np
    from PIL import Image

    from conftest import YUNET_DYNAMIC

    big = _png_header_only_huge(tmp_path / "huge.png")
    (tmp_path / "huge").write_bytes(big.read_bytes())  # no suffix: decided by content
    cut = media("single_face.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(cut[: len(cut) // 2])
    (tmp_path / "cut").write_bytes(cut[: len(cut) // 2])
    Image.fromarray(np.random.default_rng(0).random((20, 30), dtype=np.float32), mode="F").save(tmp_path / "f.tiff")
    (tmp_path / "f").write_bytes((tmp_path / "f.tiff").read_bytes())
    for name, message in [
        ("huge.png", "14200x14200 pixels exceeds"),
        ("huge", "14200x14200 pixels exceeds"),
        ("cut.jpg", "not an image"),
        ("cut", "not an image"),
        ("f.tiff", "got float32"),
        ("f", "got float32"),
    ]:
        p = cfcsp("predict", tmp_path / name, "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, check=False)
        assert p.returncode == 2 and p.stderr.startswith("cfcsp: error: ") and message in p.stderr, (name, p.stderr)
        assert "video" not in p.stderr and len(p.stderr.splitlines()) == 1, (name, p.stderr)


def test_damaged_video_one_warning_line_and_decoder_noise_only_with_verbose(tiny_repo, media, tmp_path):
    from conftest import YUNET_DYNAMIC
    from made_video import damaged_mp4

    video = damaged_mp4(media, tmp_path)
    p = cfcsp(
        "predict", video, "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "-q", "--output", tmp_path / "r.json"
    )
    assert p.stderr.splitlines() == [f"warning: {video}: 1 undecodable frame skipped: 34 (1.133 s)"]
    assert json.loads(p.stdout)["frames_processed"] == 71
    assert json.loads((tmp_path / "r.json").read_text())["skipped_frames"] == [34]
    p = cfcsp("predict", video, "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "-q", "--verbose")
    assert "[h264 @" in p.stderr  # FFmpeg's own complaint, asked for
    p = cfcsp(
        "batch",
        video,
        "--out",
        tmp_path / "out",
        "--model",
        tiny_repo,
        "--detector-model",
        YUNET_DYNAMIC,
        "-q",
        "--max-frames",
        40,
    )
    assert "[h264 @" not in p.stderr and json.loads(p.stdout)["frames"] == 40


def test_annotated_video_covers_exactly_the_processed_frames(tiny_repo, media, tmp_path):
    from conftest import YUNET_DYNAMIC

    cfcsp(
        "predict",
        media("single_face.mp4"),
        "--model",
        tiny_repo,
        "--detector-model",
        YUNET_DYNAMIC,
        "-q",
        "--max-frames",
        10,
        "--annotate",
        tmp_path / "a.mp4",
    )
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    frames = 0
    while cap.grab():
        frames += 1
    assert frames == 10  # was 72: frames 10-71 carried frame 9's box


def test_detector_limits_from_the_command_line(tiny_repo, media):
    # multi_face.jpg's five faces are 79-105 px; 0.15 of its 667 px side (100 px) keeps the larger ones
    out = cfcsp(
        "predict",
        media("multi_face.jpg"),
        "--model",
        tiny_repo,
        "--min-face-ratio",
        0.15,
        "--min-face-size",
        30,
        "--min-face-score",
        0.99,
    )
    faces = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert 0 < len(faces) < 5
    p = cfcsp("predict", media("multi_face.jpg"), "--model", tiny_repo, "--min-face-score", 1.5, check=False)
    assert p.returncode == 2 and "min_score" in p.stderr


def test_batch_run_in_process_leaves_the_environment_as_it_was(tiny_repo, media, tmp_path, monkeypatch):
    """cfcsp batch quiets FFmpeg in its workers through the environment; a program that calls main()
    itself must get its own environment back (later subprocesses' --verbose lost FFmpeg's messages)."""
    import os

    from cfcsp_sdk.cli import main

    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    before = dict(os.environ)
    assert (
        main(
            [
                "batch",
                str(media("single_face.mp4")),
                "--out",
                str(tmp_path / "o"),
                "--model",
                str(tiny_repo),
                "-q",
                "--max-frames",
                "3",
            ]
        )
        == 0
    )
    assert dict(os.environ) == before


def test_batch_takes_the_recognizer_options_predict_takes(tiny_repo, media, tmp_path):
    """--views, --detect-every and the detector limits reach the batch's recognizers (they were
    predict-only), and bad values are refused before any video is read."""

    def probabilities(name, *extra):
        cfcsp(
            "batch",
            media("single_face.mp4"),
            "--out",
            tmp_path / name,
            "--model",
            tiny_repo,
            "-q",
            "--max-frames",
            4,
            *extra,
        )
        (path,) = (tmp_path / name).glob("*.csv")
        return [[v for k, v in row.items() if k.startswith("raw_p_")] for row in csv.DictReader(open(path))]

    none = probabilities("none", "--views", "none", "--detect-every", "1", "--min-face-score", "0.9")
    mirror = probabilities("mirror", "--views", "mirror", "--detect-every", "1", "--min-face-score", "0.9")
    assert len(none) == len(mirror) == 4 and none[0] and none != mirror
    p = cfcsp(
        "batch",
        media("single_face.mp4"),
        "--out",
        tmp_path / "bad",
        "--model",
        tiny_repo,
        "--detect-every",
        0,
        check=False,
    )
    assert p.returncode == 2 and "detect_every" in p.stderr


# ---- issue 22 item 4, issue 25 items 6 and 8 -------------------------------------------------------------
def _m2ts(media, path, frames=12):
    from fractions import Fraction

    import av

    with av.open(str(media("single_face.mp4"))) as src, av.open(str(path), "w", format="mpegts") as dst:
        out = dst.add_stream("libx264", rate=24)
        out.width, out.height, out.pix_fmt = 320, 180, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            image = image.reformat(320, 180, "yuv420p")
            image.pts, image.time_base = i, Fraction(1, 24)
            for packet in out.encode(image):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    return path


def test_predict_on_a_folder_picks_up_m2ts_videos(tiny_repo, media, tmp_path):
    """cfcsp predict x.m2ts worked but cfcsp predict DIR skipped it (two lists of video suffixes)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    _m2ts(media, folder / "clip.m2ts")
    shutil.copy(media("single_face.jpg"), folder / "photo.jpg")
    out = cfcsp("predict", folder, "--model", tiny_repo, "-q")
    lines = json_lines(out.stdout)
    videos = [x for x in lines if x["source"].endswith("clip.m2ts")]
    assert [v["frames_processed"] for v in videos] == [12]
    assert sum(x["source"].endswith("photo.jpg") for x in lines) == 1


def test_predict_and_batch_share_their_options_and_sampling_rules(tiny_repo, media, tmp_path):
    from cfcsp_sdk.cli import build_parser

    parser = build_parser()
    predict = vars(parser.parse_args(["predict", "x.mp4"]))
    batch = vars(parser.parse_args(["batch", "x.mp4", "--out", "o"]))
    shared = {
        "model",
        "revision",
        "backend",
        "detector",
        "detector_model",
        "min_face_score",
        "min_face_size",
        "min_face_ratio",
        "views",
        "offline",
        "fps",
        "stride",
        "max_frames",
        "detect_every",
        "smoothing_window",
        "quiet",
        "verbose",
    }
    assert {k: predict[k] for k in shared} == {k: batch[k] for k in shared}
    assert predict["stride"] is None  # batch's default was 1, predict's None
    for command in (
        ["predict", media("single_face.mp4")],
        ["batch", media("single_face.mp4"), "--out", tmp_path / "o"],
    ):
        p = cfcsp(*command, "--model", tiny_repo, "--fps", 5, "--stride", 2, check=False)
        assert p.returncode == 2 and "--fps and --stride are two ways" in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()


def test_smoothing_window_from_the_command_line(tiny_repo, media, tmp_path):
    cfcsp(
        "predict",
        media("single_face.mp4"),
        "--model",
        tiny_repo,
        "-q",
        "--fps",
        10,
        "--smoothing-window",
        1,
        "--output",
        tmp_path / "w1.json",
    )
    one = json.loads((tmp_path / "w1.json").read_text())
    assert one["smoothing"]["window"] == 1
    assert all(r["label"] == r["raw_label"] for r in one["rows"])  # a 1-frame window changes nothing
    cfcsp(
        "predict",
        media("single_face.mp4"),
        "--model",
        tiny_repo,
        "-q",
        "--fps",
        10,
        "--smoothing-window",
        9,
        "--output",
        tmp_path / "w9.json",
    )
    assert json.loads((tmp_path / "w9.json").read_text())["smoothing"]["window"] == 9
    cfcsp(
        "batch",
        media("single_face.mp4"),
        "--out",
        tmp_path / "b",
        "--model",
        tiny_repo,
        "-q",
        "--fps",
        10,
        "--smoothing-window",
        1,
    )
    rows = list(csv.DictReader(open(tmp_path / "b" / "single_face.csv")))
    assert len(rows) == 24 and all(r["label"] == r["raw_label"] for r in rows)
    p = cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--smoothing-window", 0, check=False)
    assert p.returncode == 2 and "window" in p.stderr


def test_info_says_torch_is_not_installed():
    info = json.loads(cfcsp("info", python_prelude="import sys; sys.modules['torch'] = None").stdout)
    assert info["torch"].startswith("not installed") and "torch_cuda" not in info


def test_progress_rate_is_the_real_one(tiny_repo, media):
    """The first command's bar said ~105,000 frame/s for ~100 (issue 25, item 6)."""
    p = cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--fps", 5)
    rates = [float(r) for r in re.findall(r"([\d.]+)frame/s", p.stderr)]
    assert rates and rates[-1] < 2000, p.stderr


def test_predict_sample_fetches_caches_and_labels_the_public_clip(tiny_repo, tmp_path):
    import os

    env = {**os.environ, "CFCSP_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "cfcsp_sdk.cli",
        "predict",
        "--sample",
        "--model",
        str(tiny_repo),
        "-q",
        "--fps",
        "5",
        "--output",
        str(tmp_path / "r.csv"),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    (summary,) = json_lines(p.stdout)
    assert summary["frames_processed"] == 12 and summary["source"].endswith("sample/single_face.mp4")
    assert (tmp_path / "cache" / "sample" / "single_face.mp4").is_file()
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 13
    # cached: no index needed the second time; an empty cache without one is a one-line error
    offline = {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple/"}
    offline.pop("PIP_FIND_LINKS", None)
    offline.pop("PIP_EXTRA_INDEX_URL", None)
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=offline).returncode == 0
    offline["CFCSP_CACHE"] = str(tmp_path / "empty")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=offline)
    assert (
        p.returncode == 2
        and p.stderr.strip().splitlines() == [p.stderr.strip().splitlines()[0]]
        and "could not fetch the sample video" in p.stderr
    )
    p = cfcsp("predict", check=False)
    assert p.returncode == 2 and "or --sample" in p.stderr


def test_json_line_gives_the_verdict_per_track(media, tmp_path):
    """Issue 25, item 4: with several people the pooled dominant_label mixed them (now null); the
    printed line gives each track's verdict, as summary()['dominant_labels'] does."""
    cap = cv2.VideoCapture(str(media("single_face.mp4")))  # a happy face, beside a surprised one
    still = cv2.resize(cv2.imread(str(media("0-f1-su-ph.jpg"))), (360, 360))
    path = tmp_path / "two_faces.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1000, 360))
    for _ in range(72):  # all of it: it smiles from about frame 25
        out.write(np.hstack([cap.read()[1], still]))
    out.release()
    (line,) = json_lines(cfcsp("predict", path, "-q").stdout)
    assert sorted(line["dominant_labels"].values()) == ["Happiness", "Surprise"] and line["dominant_label"] is None
    assert {t: s["dominant_label"] for t, s in line["tracks"].items()} == line["dominant_labels"]
    (line,) = json_lines(cfcsp("predict", media("single_face.mp4"), "-q").stdout)
    assert line["dominant_labels"] == {"0": "Happiness"} and line["dominant_label"] == "Happiness"


def test_annotate_says_the_codec_once(tiny_repo, media, tmp_path):
    from conftest import YUNET_DYNAMIC

    for name, codec in (("a.mp4", "H.264 (libx264)"), ("a.mkv", "H.264 (libx264)"), ("a.avi", "Motion JPEG")):
        p = cfcsp(
            "predict",
            media("single_face.mp4"),
            "--model",
            tiny_repo,
            "--detector-model",
            YUNET_DYNAMIC,
            "-q",
            "--max-frames",
            4,
            "--annotate",
            tmp_path / name,
        )
        assert p.stderr.splitlines() == [f"cfcsp: annotated video {tmp_path / name}: {codec}"]


def test_damaged_video_warns_once_with_an_annotated_copy(tiny_repo, media, tmp_path):
    """Re-reading the damaged video for --annotate told its lost frame again, as a 'note'."""
    from conftest import YUNET_DYNAMIC
    from made_video import damaged_mp4

    video = damaged_mp4(media, tmp_path)
    p = cfcsp(
        "predict",
        video,
        "--model",
        tiny_repo,
        "--detector-model",
        YUNET_DYNAMIC,
        "-q",
        "--annotate",
        tmp_path / "a.mp4",
        "--plot",
        tmp_path / "p.png",
    )
    assert p.stderr.splitlines() == [
        f"cfcsp: annotated video {tmp_path / 'a.mp4'}: H.264 (libx264)",
        f"warning: {video}: 1 undecodable frame skipped: 34 (1.133 s)",
    ]


def test_label_offset_moves_the_label_and_bad_ones_exit_2(tiny_repo, media):
    out = cfcsp("predict", media("single_face.jpg"), "--model", tiny_repo, "--label-offset", "Surprise=40", "-q")
    lines = json_lines(out.stdout)  # one line per face
    assert lines and {x["label"] for x in lines} == {"Surprise"}, lines
    for bad, message in (("Surprise", "LABEL=OFFSET"), ("Contempt=1", "no label 'Contempt'")):
        p = cfcsp("predict", media("single_face.jpg"), "--model", tiny_repo, "--label-offset", bad, check=False)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
