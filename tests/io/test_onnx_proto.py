"""ONNX models written without the onnx package: valid for onnx's checker, byte-identical after onnx
parses and re-serialises them, and computed right by ONNX Runtime."""

import numpy as np
import onnx
import onnxruntime as ort

from cfcsp_sdk.io import onnx_proto


def small_model() -> bytes:
    w = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    nodes = [
        onnx_proto.node("MatMul", ["x", "w"], ["xw"]),
        onnx_proto.node("LeakyRelu", ["xw"], ["r"], alpha=0.25),  # float attribute
        onnx_proto.node("Transpose", ["r"], ["rt"], perm=[1, 0]),  # ints attribute
        onnx_proto.node("Softmax", ["rt"], ["y"], axis=-1),  # negative int attribute
    ]
    return onnx_proto.model(
        nodes,
        "small",
        [onnx_proto.value_info("x", ["N", 2])],
        [onnx_proto.value_info("y", [3, "N"])],
        [onnx_proto.tensor("w", w)],
    )


def test_bytes_are_what_onnx_writes_and_checks():
    data = small_model()
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m, full_check=True)
    assert m.SerializeToString() == data
    assert m.ir_version == 8 and m.opset_import[0].version == 17 and m.producer_name == "cfcsp-sdk"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for n in m.graph.node for a in n.attribute}
    assert attrs == {"alpha": 0.25, "perm": [1, 0], "axis": -1}
    dims = [d.dim_param or d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [3, "N"]


def test_onnx_runtime_computes_the_graph():
    x = np.array([[1.0, -2.0], [0.5, 3.0], [0.0, 0.0], [-1.0, 1.0]], np.float32)
    w = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    xw = x @ w
    r = np.where(xw >= 0, xw, 0.25 * xw).T
    e = np.exp(r - r.max(axis=-1, keepdims=True))
    expected = e / e.sum(axis=-1, keepdims=True)
    (y,) = ort.InferenceSession(small_model(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_string_attribute_and_large_values():
    data = onnx_proto.model(
        [onnx_proto.node("Pad", ["x", "p"], ["y"], mode="edge")],
        "pad",
        [onnx_proto.value_info("x", [2, 2]), onnx_proto.value_info("p", [4], elem_type=7)],
        [onnx_proto.value_info("y", [4, 4])],
        [],
    )
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m)
    assert m.SerializeToString() == data and m.graph.node[0].attribute[0].s == b"edge"
    x = np.array([[1, 2], [3, 4]], np.float32)
    (y,) = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "p": np.array([1, 1, 1, 1], np.int64)}
    )
    np.testing.assert_array_equal(y, np.pad(x, 1, mode="edge"))
    big = onnx_proto.tensor("big", np.zeros((300, 70000), np.float32))  # lengths need multi-byte varints
    t = onnx.TensorProto()
    t.ParseFromString(big)
    assert list(t.dims) == [300, 70000] and len(t.raw_data) == 300 * 70000 * 4
