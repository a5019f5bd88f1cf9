"""The push pipeline (VideoPipeline) and the FrameSource protocol, on real video (tiny model: plumbing)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError
from cfcsp_sdk.faces import GivenFaces
from cfcsp_sdk.io.frame_source import FrameSource
from cfcsp_sdk.io.video import Frame, VideoInfo, VideoReader
from cfcsp_sdk.pipeline import FrameRows, VideoPipeline
from cfcsp_sdk.smoother import Smoother
from moving_faces import crossing_video


def _key(rows):
    return [(r.frame, r.track, r.label, r.raw_label) for r in rows]


def _probs(rows, labels):
    return np.array(
        [[np.nan] * len(labels) if r.probabilities is None else [r.probabilities[k] for k in labels] for r in rows]
    )


@pytest.fixture(scope="module")
def crossing(media, tmp_path_factory):
    """Two real faces crossing each other: several tracks, so fine decisions and windows interleave."""
    return crossing_video(media, tmp_path_factory.mktemp("crossing"))[0]


@pytest.fixture(scope="module")
def frames(crossing):
    return list(VideoReader(crossing))


@pytest.mark.parametrize("mode", ["centered", "causal"])
def test_chunk_size_does_not_change_rows(video_recognizer, frames, mode):
    results = []
    for chunk in (1, 4, 16):
        pipe = video_recognizer.pipeline(mode=mode, chunk_frames=chunk)
        results.append([r for _, rows in pipe.run(frames) for r in rows])
    labels = video_recognizer.labels
    assert len({t for t in (r.track for r in results[0]) if t >= 0}) >= 2
    for other in results[1:]:
        assert _key(other) == _key(results[0])
        np.testing.assert_allclose(_probs(other, labels), _probs(results[0], labels), atol=1e-5)


def test_push_gives_what_stream_gives(video_recognizer, crossing, frames):
    streamed = [(f.index, _key(rows)) for f, rows in video_recognizer.stream(crossing)]
    pipe = video_recognizer.pipeline()  # causal, one frame a chunk: each push finishes its frame
    pushed = []
    for frame in frames:
        done = pipe.push(frame)
        assert [d.frame.index for d in done] == [frame.index]
        pushed += [(d.frame.index, _key(d.rows)) for d in done]
    assert pipe.finish() == []
    assert pushed == streamed and len(pushed) == len(frames)


def test_centered_push_gives_what_predict_video_gives(video_recognizer, crossing, frames):
    offline = video_recognizer.predict_video(crossing, chunk_frames=16)
    assert offline.smoothing["mode"] == "centered"
    pipe = video_recognizer.pipeline(mode="centered")
    rows, lag = [], []
    for i, frame in enumerate(frames):
        done = pipe.push(frame)
        lag += [i - d.frame.index for d in done]
        rows += [r for d in done for r in d.rows]
    rows += [r for d in pipe.finish() for r in d.rows]
    assert _key(rows) == _key(offline.rows)
    np.testing.assert_allclose(_probs(rows, offline.labels), _probs(offline.rows, offline.labels), atol=1e-5)
    # frames come back in order, while the video goes on: a centred window needs 2 w later observations
    assert lag and max(lag) >= 2 * video_recognizer.smoother.delay and min(lag) >= 0


def test_arrays_are_numbered_in_push_order(video_recognizer, frames):
    pipe = video_recognizer.pipeline()
    out = [pipe.push(f.image, time=f.time) for f in frames[:3]]
    assert [[d.frame.index for d in o] for o in out] == [[0], [1], [2]]
    assert isinstance(out[0][0], FrameRows) and out[0][0].frame.time == frames[0].time
    live = video_recognizer.pipeline()
    a, b = live.push(frames[0].image), live.push(frames[1].image)  # no time: the monotonic clock
    assert a[0].frame.time == 0.0 <= b[0].frame.time < 5


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),  # grey
        np.zeros((10, 10, 3), np.float32),  # not uint8
        np.zeros((0, 10, 3), np.uint8),  # empty
        np.zeros((10, 10, 4), np.uint8),  # alpha
        "frame.jpg",
    ],
)
def test_bad_frames_are_refused(video_recognizer, bad):
    with pytest.raises(InvalidInputError):
        video_recognizer.pipeline().push(bad)


def test_order_and_finish_are_enforced(video_recognizer, frames):
    pipe = video_recognizer.pipeline()
    pipe.push(frames[1])
    with pytest.raises(InvalidInputError, match="increase"):
        pipe.push(frames[0])
    with pytest.raises(InvalidInputError, match="go back"):
        pipe.push(Frame(frames[2].index, frames[0].time - 1, frames[2].image))
    pipe.finish()
    with pytest.raises(InvalidInputError, match="finished"):
        pipe.push(frames[3])
    for kwargs in ({"mode": "offline"}, {"chunk_frames": 0}, {"detect_every": -1}):
        with pytest.raises(InvalidInputError):
            video_recognizer.pipeline(**kwargs)


class DecodedElsewhere:
    """An integrator's frame source: frames that came from somewhere else (here: PyAV), not VideoReader."""

    def __init__(self, path):
        import av

        self.path = path
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            self.info = VideoInfo(str(path), s.width, s.height, float(s.average_rate), s.frames)
        self.error, self.frames_read, self.skipped_frames, self.skipped_times = None, 0, [], []

    def __iter__(self):
        import av

        with av.open(str(self.path)) as c:
            for i, f in enumerate(c.decode(video=0)):
                self.frames_read = i + 1
                yield Frame(i, float(f.time), f.to_ndarray(format="bgr24"))


def test_any_frame_source_goes_where_a_path_goes(video_recognizer, crossing):
    source = DecodedElsewhere(crossing)
    assert isinstance(source, FrameSource) and isinstance(VideoReader(crossing), FrameSource)
    by_path = video_recognizer.predict_video(crossing)
    by_source = video_recognizer.predict_video(DecodedElsewhere(crossing))
    assert _key(by_source.rows) == _key(by_path.rows) and by_source.frames_read == by_path.frames_read
    streamed = [f.index for f, _ in video_recognizer.stream(DecodedElsewhere(crossing))]
    assert streamed == sorted({r.frame for r in by_path.rows})
    with pytest.raises(InvalidInputError, match="frame source's own"):
        video_recognizer.predict_video(source, fps=5)
    with pytest.raises(InvalidInputError, match="video source"):
        video_recognizer.predict_video([1, 2, 3])


@pytest.mark.parametrize("mode", ["centered", "causal"])
def test_memory_does_not_grow_with_length(video_recognizer, media, mode):
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    ok, image = cap.read()
    assert ok
    pipe = VideoPipeline(
        video_recognizer.config,
        video_recognizer.cascade,
        Smoother(5, mode),
        GivenFaces([[100, 60, 300, 300]]),
        chunk_frames=8,
    )
    held = []
    for i in range(400):
        pipe.push(Frame(i, i / 30, image))
        held.append(pipe.observations_held)
    # at most one chunk waiting, plus a centred window's 2 w + 2 w observations
    assert max(held[100:]) == max(held[:100]) <= 8 + 8
    assert len(pipe.finish()) <= 8 + 8 and pipe.observations_held == 0


def test_centred_frames_waiting_hold_no_pixels_unless_asked(video_recognizer, frames):
    kept = video_recognizer.pipeline(mode="centered")
    dropped = video_recognizer.pipeline(mode="centered", keep_images=False)
    held = []
    for f in frames[:12]:
        out_kept, out_dropped = kept.push(f), dropped.push(f)
        held.append(dropped.frames_held)
        assert all(d.frame.image.shape == f.image.shape for d in out_kept)
        assert all(d.frame.image.size == 0 and d.frame.index <= f.index for d in out_dropped)
    assert max(held) >= 2  # frames did wait for later ones
    assert _key([r for d in kept.finish() for r in d.rows]) == _key([r for d in dropped.finish() for r in d.rows])


def test_a_failure_inside_ends_the_pipeline_loudly(video_recognizer, frames):
    from cfcsp_sdk import BackendError, CfcspError

    class NetworkGone:  # the cascade's networks failing mid-stream (a backend plug-in losing its device)
        def __getattr__(self, name):
            return getattr(video_recognizer.cascade, name)

        def run_coarse(self, batch):
            raise BackendError("the device went away")

    pipe = video_recognizer.pipeline()
    pipe.push(frames[0])
    pipe.cascade = NetworkGone()
    with pytest.raises(BackendError):
        for f in frames[1:]:
            pipe.push(f)
    pipe.cascade = video_recognizer.cascade  # back, but the pipeline's state is not to be trusted
    for call in (lambda: pipe.push(frames[-1]), pipe.flush, pipe.finish):
        with pytest.raises(CfcspError, match="stopped on an error"):
            call()


def test_times_may_be_numpy_numbers_and_the_clock_goes_on_from_them(video_recognizer, frames):
    pipe = video_recognizer.pipeline()
    pipe.push(Frame(0, np.float32(0.5), frames[0].image))
    pipe.push(frames[1].image, time=np.float64(5.0))
    after = pipe.push(frames[2].image)  # no time: the clock starts from the last one given
    assert after[0].frame.time >= 5.0
    with pytest.raises(InvalidInputError, match="carries its own time"):
        pipe.push(Frame(9, 9.0, frames[3].image), time=9.0)
