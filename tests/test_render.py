import numpy as np

from cfcsp_sdk.render import annotate_frame
from cfcsp_sdk.results import FaceRow

LABELS = ("Neutral", "Happiness")


def test_annotation_draws_on_a_copy():
    img = np.zeros((300, 400, 3), np.uint8)
    row = FaceRow(0, 0.0, 3, (50, 60, 150, 200), None, 0.9, "Happiness", {"Neutral": 0.2, "Happiness": 0.8})
    out = annotate_frame(img, [row, FaceRow(0, 0.0)], LABELS)
    assert img.sum() == 0 and out.shape == img.shape
    assert out[60:200, 50].any() and out[60:200, 150].any()  # box edges
    assert out[200:, :40].sum() == 0  # nothing far from the face
