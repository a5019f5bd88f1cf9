import re
import time

from cfcsp_sdk.progress import BatchProgress, FrameProgress


def _rates(text):
    return [float(r) for r in re.findall(r"([\d.]+)frame/s", text)]


def test_a_bar_counts_from_when_the_work_started_not_its_first_update(capsys):
    """The first update of a short video came after its whole first chunk: the bar, made then, showed
    ~100,000 frame/s (issue 25, item 6)."""
    with FrameProgress(True, total=72) as bar:
        time.sleep(0.3)  # opening the video and the first chunk
        bar.update(12)
        time.sleep(0.1)
        bar.finish(24)
    err = capsys.readouterr().err
    assert "24/24" in err
    assert 0 < _rates(err)[-1] < 100, err  # 24 frames in ~0.4 s: ~60 frame/s


def test_no_bar_before_the_first_frame_and_callables_get_done_and_total(capsys):
    with FrameProgress(True, total=10):
        pass  # refused before any frame: nothing drawn
    assert capsys.readouterr().err == ""
    calls = []
    p = FrameProgress(lambda done, total: calls.append((done, total)), total=100)
    p.update(16)
    p.update(32, total=90)
    p.finish(40)
    p.close()
    assert calls == [(16, 100), (32, 90), (40, 40)]
    quiet = FrameProgress(False)
    quiet.update(5)
    quiet.finish(5)
    assert capsys.readouterr().err == ""


class _Record:
    def __init__(self, source, status, error=None):
        self.source, self.status, self.error = source, status, error


def test_batch_bars_count_videos_and_frames_and_name_failures(capsys):
    with BatchProgress(True, 2) as bar:
        bar.frame(30)
        bar.video(_Record("a.mp4", "ok"))
        bar.video(_Record("b.mp4", "failed", "MediaError: broken"))
    err = capsys.readouterr().err
    assert "failed: b.mp4: MediaError: broken" in err and "2/2" in err and "30frame" in err
    with BatchProgress(False, 3) as bar:
        bar.frame(3)
        bar.video(_Record("c.mp4", "failed", "x"))
    assert capsys.readouterr().err == ""
