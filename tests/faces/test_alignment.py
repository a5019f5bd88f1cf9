import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError
from cfcsp_sdk.config import FaceTemplate
from cfcsp_sdk.faces import align_face, similarity_transform

TEMPLATE = FaceTemplate(size=(48, 48), points=((15.2, 18.9), (32.8, 18.9), (23.9, 28.5), (16.4, 35.5), (31.4, 35.5)))


def test_similarity_transform_recovers_a_known_one():
    pts = np.asarray(TEMPLATE.points)
    angle, scale, t = 0.3, 2.5, np.array([40.0, -7.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = pts @ (scale * rot).T + t
    m = similarity_transform(moved, pts)
    back = moved @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_align_face_puts_a_marked_point_on_the_template():
    img = np.zeros((200, 300, 3), np.uint8)
    pts = np.asarray(TEMPLATE.points) * 3 + [100, 20]  # the face is 3x larger and shifted
    x, y = np.round(pts[2]).astype(int)
    img[y - 2 : y + 3, x - 2 : x + 3] = 255  # a bright nose tip
    crop = align_face(img, pts, TEMPLATE)
    assert crop.shape == (48, 48, 3)
    yy, xx = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(xx - TEMPLATE.points[2][0]) <= 1 and abs(yy - TEMPLATE.points[2][1]) <= 1


def test_bad_landmarks():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(InvalidInputError):
        align_face(img, np.zeros((4, 2)), TEMPLATE)
    with pytest.raises(InvalidInputError):
        align_face(img, np.ones((5, 2)), TEMPLATE)  # all at one point
