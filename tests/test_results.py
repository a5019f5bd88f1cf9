"""Result writers (to_csv / to_json / to_abaw) write whole files or nothing (issue 14)."""

import os
import subprocess
import sys
import textwrap

import pytest

MAKE = """
from cfcsp_sdk.results import FaceBatchResult, FacePrediction
labels = ("Neutral", "Happiness")
preds = [FacePrediction("Neutral", 0, {"Neutral": 0.75, "Happiness": 0.25}, {"Neutral": 0.75, "Happiness": 0.25})
         for _ in range(2000)]
result = FaceBatchResult(preds, labels)
"""


@pytest.mark.parametrize("method,name", [("to_csv", "r.csv"), ("to_json", "r.json")])
def test_writers_keep_the_old_file_when_the_disk_fills(tmp_path, method, name):
    path = tmp_path / name
    path.write_text("previous")
    code = MAKE + textwrap.dedent(f"""
        import resource, signal
        getattr(result, {method!r})({str(tmp_path / ("small-" + name))!r})  # fits: written whole
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            getattr(result, {method!r})({str(path)!r})
        except OSError as exc:
            print("OSError", exc.errno)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["OSError", "27"], proc.stderr[-2000:]
    assert path.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == sorted([name, "small-" + name])
    assert len((tmp_path / ("small-" + name)).read_text()) > 20_000


def test_the_video_verdict_is_per_person_with_several_tracks(video_recognizer, media, tmp_path):
    """Issue 25, item 4: with two faces side by side summary()["overall"]["dominant_label"] pooled them
    (a happy and a sad face gave "Sadness"). The verdict is per track; the pooled one is given only
    for a single track."""
    import fractions
    import json

    import av
    import cv2
    import numpy as np

    left, right = (cv2.resize(cv2.imread(str(media(n))), (240, 300)) for n in ("0-f15-hao-ph.jpg", "45-m7-di-ph.jpg"))
    picture = np.hstack([left, np.full((300, 80, 3), 128, np.uint8), right])
    path = tmp_path / "two.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = picture.shape[1], picture.shape[0], "yuv420p"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(picture, "bgr24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    res = video_recognizer.predict_video(path)
    summary = res.summary()
    assert res.track_ids == [0, 1] and summary["overall"]["dominant_label"] is None
    assert summary["dominant_labels"] == {t: s.dominant_label for t, s in res.tracks().items()}
    assert json.loads(res.to_json())["summary"]["dominant_labels"] == {"0": res.tracks()[0].dominant_label,
                                                                       "1": res.tracks()[1].dominant_label}
    one = video_recognizer.predict_video(media("single_face.mp4"), max_frames=10).summary()
    assert one["overall"]["dominant_label"] == one["dominant_labels"][0]
