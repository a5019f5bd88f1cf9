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
