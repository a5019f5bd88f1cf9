"""Predict on face crops you aligned yourself (no detection, no smoothing), batched.

python examples/aligned_crops.py [PHOTO]
"""

import sys

from _sample_media import sample
from cfcsp_sdk import Recognizer
from cfcsp_sdk.faces import align_face
from cfcsp_sdk.io import load_image

photo = load_image(sys.argv[1] if len(sys.argv) > 1 else sample("multi_face.jpg"))
rec = Recognizer()
template = rec.config.preprocessing.face_template
# any 5-point landmarks will do; here the default detector's
crops = [align_face(photo, d.landmarks, template) for d in rec.detector.detect(photo)]
batch = rec.predict_faces(crops)  # uint8 BGR crops; color="rgb" for RGB ones; always a FaceBatchResult
print(batch.to_csv())
if crops:
    first = rec.predict_face(crops[0])  # one crop -> one FacePrediction
    print("first face:", first.label, {k: round(v, 3) for k, v in first.coarse_probabilities.items()})
