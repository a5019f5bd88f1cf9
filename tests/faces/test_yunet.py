import numpy as np
import pytest

from cfcsp_sdk import ModelNotFoundError
from cfcsp_sdk.faces.detection import iou_matrix
from cfcsp_sdk.faces.yunet import YuNetDetector
from cfcsp_sdk.io import load_image


@pytest.fixture(scope="module")
def detectors(yunet_fixed, yunet_dynamic):
    return YuNetDetector(yunet_fixed), YuNetDetector(yunet_dynamic)


def test_finds_the_five_faces_of_a_group_photo(detectors, media):
    img = load_image(media("multi_face.jpg"))
    fixed, dynamic = (d.detect(img) for d in detectors)
    assert len(fixed) == len(dynamic) == 5
    assert all(d.detection_score > 0.8 and d.landmarks.shape == (5, 2) for d in fixed)
    # the fixed-size (letterboxed) and dynamic models agree on where the faces are
    iou = iou_matrix([d.box for d in fixed], [d.box for d in dynamic])
    assert (iou.max(axis=1) > 0.85).all()
    for d in fixed:  # landmarks inside their box, eyes above the mouth, left eye left of right eye
        x1, y1, x2, y2 = d.box
        lm = d.landmarks
        assert ((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2)).all()
        assert lm[0, 0] < lm[1, 0] and lm[:2, 1].max() < lm[3:, 1].min()


def test_no_face_in_a_landscape_and_batches_match_singles(detectors, media):
    _, dyn = detectors
    land = load_image(media("free-mountain-vector-01.jpg"))
    face = load_image(media("single_face.jpg"))
    assert dyn.detect(land) == []
    batch = dyn.detect_batch([face, land, face])
    assert len(batch[0]) == 1 and batch[1] == [] and np.allclose(batch[2][0].box, dyn.detect(face)[0].box, atol=1e-3)


def test_missing_model_file_is_a_typed_error(tmp_path):
    with pytest.raises(ModelNotFoundError):
        YuNetDetector(tmp_path / "nope.onnx")
    with pytest.raises(ModelNotFoundError):
        YuNetDetector("someone/no-such-yunet-repo", local_files_only=True)


def test_a_model_whose_external_data_lies_elsewhere_is_refused(tmp_path):
    """A YuNet file is an ONNX model like ours: its external data must lie next to it (issue 14)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from cfcsp_sdk import UnsafeFileError

    (tmp_path / "secret.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "16")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [w],
    )
    (tmp_path / "det").mkdir()
    path = tmp_path / "det" / "yunet.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(UnsafeFileError, match="'w'"):
        YuNetDetector(model=path)
