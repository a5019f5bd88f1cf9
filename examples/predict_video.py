"""Label a video per frame and per face, smoothed over time; write CSV and the ABAW label file.

python examples/predict_video.py [VIDEO] [OUT_PREFIX]
"""

import sys

from _sample_media import sample
from cfcsp_sdk import Recognizer

video_path = sys.argv[1] if len(sys.argv) > 1 else sample("face_noface.mov")
prefix = sys.argv[2] if len(sys.argv) > 2 else "example_video"
rec = Recognizer()
video = rec.predict_video(video_path, fps=10)
print(f"{video.frames_processed} frames sampled, {len(video.track_ids)} track(s); error: {video.error}")
for track, s in video.tracks().items():
    print(f"track {track}: {s.frames} frames, {s.start_time:.2f}-{s.end_time:.2f} s, mostly {s.dominant_label}")
    for seg in s.segments[:5]:
        print(f"    {seg.start_time:6.2f}-{seg.end_time:6.2f} s  {seg.label}")
video.to_csv(f"{prefix}.csv")
video.to_abaw(f"{prefix}_abaw.txt")
print(f"wrote {prefix}.csv and {prefix}_abaw.txt")
