import json
import subprocess
import sys

import cv2
import numpy as np

from conftest import YUNET_DYNAMIC


def cfcsp(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "cfcsp_sdk.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_predict_video_with_all_outputs(tiny_repo, media, tmp_path):
    out = cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC,
                "--fps", 10, "--output", tmp_path / "r.csv", "--annotate", tmp_path / "a.mp4", "--plot",
                tmp_path / "p.png")
    summary = json.loads(out.stdout)
    assert summary["frames_with_face"] == summary["frames_processed"] == 24
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 25
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 72
    assert cv2.imread(str(tmp_path / "p.png")).shape[1] > 500
    assert "frame" in out.stderr  # the progress bar


def test_predict_image_json_and_abaw(tiny_repo, media, tmp_path):
    out = cfcsp("predict", media("multi_face.jpg"), "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC,
                "--output", tmp_path / "r.json", "--annotate", tmp_path / "a.png")
    assert len(json.loads(out.stdout)) == 5
    assert len(json.loads((tmp_path / "r.json").read_text())["faces"]) == 5
    assert cv2.imread(str(tmp_path / "a.png")).shape == (667, 1000, 3)
    cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "-q",
          "--stride", 8, "--output", tmp_path / "abaw.txt")
    assert len((tmp_path / "abaw.txt").read_text().splitlines()) == 73


def test_errors_are_one_line_and_exit_2(tmp_path, tiny_repo):
    p = cfcsp("predict", tmp_path / "missing.mp4", "--model", tiny_repo, check=False)
    assert p.returncode == 2 and p.stderr.startswith("cfcsp: error: no such file")
    (tmp_path / "junk.bin").write_bytes(b"\x01\x02" * 500)
    p = cfcsp("predict", tmp_path / "junk.bin", "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_bad_output_paths_fail_before_any_frame_is_read(tmp_path, tiny_repo, media):
    video = media("single_face.mp4")
    for option, value, message in [
        ("--output", tmp_path / "no_such_folder" / "r.csv", "does not exist"),
        ("--output", tmp_path / "r.xlsx", "--output must end in"),
        ("--plot", tmp_path / "gone" / "p.png", "does not exist"),
        ("--annotate", tmp_path / "gone" / "a.mp4", "does not exist"),
    ]:
        p = cfcsp("predict", video, "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, option, value, check=False)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
        assert "frame/s" not in p.stderr  # refused before the progress bar started
    image = media("multi_face.jpg")
    p = cfcsp("predict", image, "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "--annotate",
              tmp_path / "a.mp4", check=False)
    assert p.returncode == 2 and "--annotate must end in an image suffix" in p.stderr
    p = cfcsp("predict", image, "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "--output",
              tmp_path / "labels.txt", check=False)
    assert p.returncode == 2 and "--output must end in" in p.stderr


def test_video_urls_and_cameras(tmp_path, tiny_repo, media):
    from http_media_server import MediaServer

    clip = media("single_face.mp4")
    with MediaServer(clip.parent) as server:
        out = cfcsp("predict", f"{server.url}/{clip.name}", "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC,
                    "-q", "--stride", 12, "--output", tmp_path / "r.csv")
    assert json.loads(out.stdout)["frames_processed"] == 6
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 7
    p = cfcsp("predict", "0", "--model", tiny_repo, check=False)  # a camera would run forever
    assert p.returncode == 2 and "--max-frames" in p.stderr


def test_max_frames_stops_early(tmp_path, tiny_repo, media):
    cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "-q",
          "--max-frames", 5, "--output", tmp_path / "r.csv")
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
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "cfcsp_sdk.cli", "predict", str(video), "--model",
                                 str(tiny_repo), "--detector-model", str(YUNET_DYNAMIC), "--output", str(out)],
                                stdout=subprocess.DEVNULL, stderr=err_file, text=True)
        # the progress bar has counted frames: processing is under way
        rc, _ = _interrupt_when(proc, lambda: any(f" {n}/1500" in err_path.read_text() for n in range(16, 200)))
    err = err_path.read_text()
    assert rc == 130
    assert "Traceback" not in err and err.rstrip().endswith("cfcsp: interrupted; nothing written")
    assert sorted(os.listdir(tmp_path)) == ["long.avi", "stderr.txt"]  # no output, no temporary file


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
    proc = subprocess.Popen([sys.executable, "-m", "cfcsp_sdk.cli", "predict", str(image), "--model", "acme/slow",
                             "--output", str(tmp_path / "r.json")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
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
    code = ("import sys, cfcsp_sdk.cli; "
            "print(sorted(m for m in ('numpy', 'cv2', 'onnxruntime', 'torch', 'huggingface_hub') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_detect_every_reaches_the_video_pipeline(tmp_path, tiny_repo, media):
    import csv

    def boxes(name, *extra):
        cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--detector-model", YUNET_DYNAMIC, "-q",
              "--max-frames", 7, "--output", tmp_path / name, *extra)
        return [tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")) for r in csv.DictReader(open(tmp_path / name))]

    every, third = boxes("a.csv"), boxes("b.csv", "--detect-every", 3)
    assert len(every) == len(third) == 7
    assert [every[k] == third[k] for k in range(7)] == [True, False, False, True, False, False, True]
    p = cfcsp("predict", media("single_face.mp4"), "--model", tiny_repo, "--detect-every", 0, check=False)
    assert p.returncode == 2 and "detect_every" in p.stderr and len(p.stderr.strip().splitlines()) == 1
