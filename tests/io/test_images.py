import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, MediaError
from cfcsp_sdk.io import images
from cfcsp_sdk.io.images import load_image, to_bgr_uint8


def test_real_photo_and_alpha_png(media):
    img = load_image(media("multi_face.jpg"))
    assert img.dtype == np.uint8 and img.shape == (667, 1000, 3)
    rgba = cv2.imread(str(media("Image_with_alpha.png")), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4
    assert load_image(media("Image_with_alpha.png")).shape == rgba.shape[:2] + (3,)


def test_grey_16bit_rgba_and_rgb_arrays():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_bgr_uint8(grey)
    assert out.shape == (3, 4, 3) and (out[..., 0] == grey).all()
    deep = np.full((2, 2), 65535, np.uint16)
    assert (to_bgr_uint8(deep) == 255).all()
    assert (to_bgr_uint8(np.full((2, 2, 3), 257, np.uint16)) == 1).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200
    assert (to_bgr_uint8(rgba, "rgb")[..., 2] == 200).all()


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((0, 4, 3), np.uint8), np.zeros((2, 2, 2, 3), np.uint8), [1, 2]])
def test_bad_arrays(bad):
    with pytest.raises(InvalidInputError):
        load_image(bad)


def test_bad_files(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "text.jpg").write_text("hello, not a picture")
    with pytest.raises(MediaError, match="decode"):
        load_image(tmp_path / "text.jpg")
    with pytest.raises(MediaError, match="not a file"):
        load_image(tmp_path)


def test_huge_images_are_refused(monkeypatch, media):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidInputError, match="exceeds"):
        load_image(media("single_face.jpg"))
