"""Streaming: labels as frames arrive, causal smoothing, constant memory (also for webcams: pass 0).

python examples/stream_video.py [VIDEO_OR_CAMERA_INDEX]
"""

import sys

from _sample_media import sample
from cfcsp_sdk import Recognizer

source = sys.argv[1] if len(sys.argv) > 1 else str(sample("single_face.mp4"))
source = int(source) if source.isdigit() else source
rec = Recognizer()
for frame, rows in rec.stream(source, fps=10):
    labels = ", ".join(f"track {r.track}: {r.label} ({r.probabilities[r.label]:.2f})" for r in rows if r.has_face)
    print(f"{frame.time:6.2f} s  {labels or 'no face'}")
