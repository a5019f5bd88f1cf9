import numpy as np
import pytest

from cfcsp_sdk.faces.detection import iou_matrix
from cfcsp_sdk.faces.mtcnn import MtcnnDetector, build_onnx, load_mtcnn_weights, mtcnn_weights_dir
from cfcsp_sdk.faces.yunet import YuNetDetector
from cfcsp_sdk.io import load_image


@pytest.fixture(scope="module")
def mtcnn():
    return MtcnnDetector()


def test_weights_come_from_the_mtcnn_package_without_importing_it():
    import sys

    weights = load_mtcnn_weights(str(mtcnn_weights_dir()))
    assert [w.shape for w in weights["pnet"]][:3] == [(3, 3, 3, 10), (10,), (1, 1, 10)]
    assert weights["onet"][-2].shape == (256, 2)
    assert "mtcnn" not in sys.modules and "tensorflow" not in sys.modules


def test_the_default_detector_needs_no_onnx_package(media):
    import subprocess
    import sys

    code = ("import sys; from cfcsp_sdk.faces.mtcnn import MtcnnDetector; from cfcsp_sdk.io import load_image; "
            f"n = len(MtcnnDetector(threads=1).detect(load_image({str(media('single_face.jpg'))!r}))); "
            "print(n, 'onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "False"]


def test_group_photo_faces_and_landmarks_agree_with_yunet(mtcnn, media, yunet_dynamic):
    img = load_image(media("multi_face.jpg"))
    dets = mtcnn.detect(img)
    assert len(dets) == 5 and all(d.score > 0.9 for d in dets)
    yunet = YuNetDetector(yunet_dynamic).detect(img)
    iou = iou_matrix([d.box for d in dets], [d.box for d in yunet])
    assert (iou.max(axis=1) > 0.5).all()
    for d in dets:
        match = yunet[int(iou[dets.index(d)].argmax())]
        size = d.box[2] - d.box[0]
        # the same five points, in the same order, within a tenth of the face size
        assert np.abs(d.landmarks - match.landmarks).max() < 0.1 * size


def test_onnx_and_torch_networks_agree(media):
    import onnx
    import onnxruntime as ort
    import torch

    from cfcsp_sdk.faces.mtcnn import build_torch

    weights = load_mtcnn_weights(str(mtcnn_weights_dir()))
    rng = np.random.default_rng(0)
    for name, size in (("pnet", 37), ("rnet", 24), ("onet", 48)):
        x = rng.normal(size=(3, 3, size, size)).astype(np.float32)
        graph = build_onnx(name, weights[name])  # written without the onnx package: check it with onnx
        onnx.checker.check_model(onnx.load_from_string(graph), full_check=True)
        assert onnx.load_from_string(graph).SerializeToString() == graph
        a = ort.InferenceSession(graph).run(None, {"input": x})
        with torch.inference_mode():
            b = [o.numpy() for o in build_torch(name, weights[name])(torch.from_numpy(x))]
        assert len(a) == len(b)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, atol=1e-4)
    img = load_image(media("single_face.jpg"))
    d1 = MtcnnDetector(backend="onnx").detect(img)
    d2 = MtcnnDetector(backend="torch").detect(img)
    assert len(d1) == len(d2) == 1 and np.allclose(d1[0].box, d2[0].box, atol=0.5)


def test_no_face_and_tiny_images(mtcnn, media):
    assert mtcnn.detect(load_image(media("free-mountain-vector-01.jpg"))) == []
    assert mtcnn.detect(np.zeros((8, 8, 3), np.uint8)) == []
