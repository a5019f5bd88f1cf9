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
    assert json.loads(res.to_json())["summary"]["dominant_labels"] == {
        "0": res.tracks()[0].dominant_label,
        "1": res.tracks()[1].dominant_label,
    }
    one = video_recognizer.predict_video(media("single_face.mp4"), max_frames=10).summary()
    assert one["overall"]["dominant_label"] == one["dominant_labels"][0]


# ---- one name per concept (issue 22 item 2): new spellings, deprecated aliases, unchanged files ------
def _prediction():
    from cfcsp_sdk import FacePrediction

    return FacePrediction(
        "Happiness",
        1,
        {"Neutral": 0.25, "Happiness": 0.75},
        coarse_probabilities={"Neutral": 0.25, "Happiness": 0.75},
        fine_probabilities={"Happiness": None},
        unrefined=(),
    )


def _video():
    from cfcsp_sdk import FaceRow, VideoResult

    probs = {"Neutral": 0.25, "Happiness": 0.75}
    rows = [
        FaceRow(
            0,
            0.0,
            0,
            (1.0, 2.0, 11.5, 12.25),
            None,
            0.99,
            "Happiness",
            probs,
            "Neutral",
            {"Neutral": 0.6, "Happiness": 0.4},
        ),
        FaceRow(1, 1 / 3),
    ]
    return VideoResult("clip.mp4", ("Neutral", "Happiness"), rows, fps=3.0, frame_count=2, frames_read=2)


def test_coarse_and_fine_probabilities_keep_their_old_names_for_one_release():
    from cfcsp_sdk import FacePrediction
    from cfcsp_sdk.errors import InvalidInputError

    p = _prediction()
    with pytest.warns(DeprecationWarning, match="coarse_probabilities"):
        assert p.coarse_scores is p.coarse_probabilities
    with pytest.warns(DeprecationWarning, match="fine_probabilities"):
        assert p.fine_scores is p.fine_probabilities
    with pytest.warns(DeprecationWarning) as caught:
        old = FacePrediction(
            "Happiness",
            1,
            dict(p.probabilities),
            coarse_scores=dict(p.coarse_probabilities),
            fine_scores={"Happiness": None},
        )
    assert old == p
    assert [str(w.message).split(";")[1] for w in caught] == [" use coarse_probabilities=", " use fine_probabilities="]
    with pytest.raises(InvalidInputError), pytest.warns(DeprecationWarning):
        FacePrediction("Happiness", 1, {}, {"Neutral": 1.0}, coarse_scores={"Neutral": 1.0})
    with pytest.raises(InvalidInputError, match="coarse_probabilities"):
        FacePrediction("Happiness", 1, {})


def test_files_keep_their_format(tmp_path):
    """JSON keys and CSV columns are as in 0.1 (the attribute renames do not reach the files)."""
    import json

    from cfcsp_sdk import FaceBatchResult

    p = _prediction()
    assert list(p.to_dict()) == ["label", "label_index", "probabilities", "coarse_scores", "fine_scores", "unrefined"]
    assert p.to_json(tmp_path / "p.json") == (tmp_path / "p.json").read_text()  # to_json takes a path now
    assert json.loads(p.to_json())["coarse_scores"] == p.coarse_probabilities
    batch = FaceBatchResult([p, p], ("Neutral", "Happiness"))
    assert batch.to_csv(tmp_path / "b.csv") == (
        "face,label,label_index,p_Neutral,p_Happiness\n0,Happiness,1,0.25,0.75\n1,Happiness,1,0.25,0.75\n"
    )
    assert (tmp_path / "b.csv").read_bytes() == batch.to_csv().encode()
    video = _video()
    assert video.to_csv() == (
        "frame,time,track,has_face,x1,y1,x2,y2,detection_score,label,raw_label,p_Neutral,p_Happiness,"
        "raw_p_Neutral,raw_p_Happiness\n"
        "0,0.0,0,1,1.0,2.0,11.5,12.25,0.99,Happiness,Neutral,0.25,0.75,0.6,0.4\n"
        "1,0.333333,-1,0,,,,,,,,,,,\n"
    )
    assert video.to_abaw() == "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n4\n4\n"


def test_rows_are_typed_and_records_are_flat_everywhere():
    from cfcsp_sdk import FaceRow

    video = _video()
    assert all(isinstance(r, FaceRow) for r in video.rows)
    records = video.to_records()
    assert [r["frame"] for r in records] == [0, 1] and records[0]["p_Happiness"] == 0.75
    with pytest.warns(DeprecationWarning, match=r"VideoResult\.to_records\(\)"):
        assert video.table() == records
    pd = pytest.importorskip("pandas")
    frame = video.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == video.columns and len(frame) == 2


def test_export_methods_are_written_once():
    from cfcsp_sdk import DetectedFace, FaceBatchResult, FacePrediction, FaceRow, ImageResult, VideoResult
    from cfcsp_sdk.results import JsonExport, TableExport

    for cls in (FacePrediction, FaceBatchResult, ImageResult, VideoResult, FaceRow, DetectedFace):
        assert cls.to_json is JsonExport.to_json, cls
    for cls in (FaceBatchResult, ImageResult, VideoResult):
        assert cls.to_csv is TableExport.to_csv and cls.to_dataframe is TableExport.to_dataframe, cls
        assert cls.to_records is not TableExport.to_records and cls.columns is not TableExport.columns, cls


def test_detection_score_is_the_one_name():
    from cfcsp_sdk.faces import Detection

    d = Detection((0.0, 0.0, 4.0, 4.0), detection_score=0.5)
    assert Detection((0.0, 0.0, 4.0, 4.0), 0.5) == d
    with pytest.warns(DeprecationWarning, match="detection_score"):
        assert d.score == 0.5
    with pytest.warns(DeprecationWarning, match="detection_score"):
        assert Detection((0.0, 0.0, 4.0, 4.0), score=0.5) == d
    assert d.to_dict()["detection_score"] == 0.5
