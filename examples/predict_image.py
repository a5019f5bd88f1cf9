"""Recognise the expression of every face in a photo.

python examples/predict_image.py [PHOTO]
"""

import sys

from _sample_media import sample
from cfcsp_sdk import Recognizer

photo = sys.argv[1] if len(sys.argv) > 1 else sample("multi_face.jpg")
rec = Recognizer()  # the bundled model; MTCNN finds the faces, offline
result = rec.predict_image(photo)
print(f"{len(result)} face(s) in {photo}")
for i, face in enumerate(result.faces):
    p = face.prediction
    top3 = sorted(p.probabilities.items(), key=lambda kv: -kv[1])[:3]
    print(
        f"  face {i} at {[round(v) for v in face.box]} (detection {face.detection_score:.2f}): {p.label}  "
        + ", ".join(f"{k} {v:.2f}" for k, v in top3)
    )
