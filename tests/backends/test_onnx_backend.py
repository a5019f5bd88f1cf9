import numpy as np
import onnxruntime as ort
import pytest

from cfcsp_sdk import BackendError, InvalidInputError, ModelConfig
from cfcsp_sdk.backends import get_backend


def test_session_options_are_applied(tiny_repo):
    b = get_backend("onnx", intra_op_num_threads=1, inter_op_num_threads=1, graph_optimization_level="basic")
    assert b.options.intra_op_num_threads == 1
    assert b.options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    net = b.load_network(tiny_repo, "coarse", cfg.networks["coarse"])
    assert net.session.get_providers() == ["CPUExecutionProvider"]
    for n in (1, 3, 17):  # dynamic batch
        assert net(np.zeros((n, 3, 32, 32), np.float32)).shape == (n, 5)
    assert net(np.zeros((0, 3, 32, 32), np.float32)).shape == (0, 5)
    with pytest.raises(InvalidInputError):
        net(np.zeros((1, 3, 32, 32), np.float64))
    with pytest.raises(BackendError):
        net(np.zeros((1, 3, 31, 32), np.float32))
    assert b.describe()["providers"] == ["CPUExecutionProvider"]


def test_cuda_when_absent_is_a_clear_error():
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert get_backend("onnx", device="cuda").providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(BackendError, match="lacks CUDAExecutionProvider"):
            get_backend("onnx", device="cuda")
    with pytest.raises(BackendError):
        get_backend("onnx", device="tpu")
    with pytest.raises(BackendError):
        get_backend("onnx", graph_optimization_level="max")


def test_missing_and_corrupt_weight_files(tiny_repo, tmp_path):
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    b = get_backend("onnx")
    with pytest.raises(BackendError, match="coarse.onnx"):
        b.load_network(tmp_path, "coarse", cfg.networks["coarse"])
    (tmp_path / "coarse.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(BackendError, match="could not load"):
        b.load_network(tmp_path, "coarse", cfg.networks["coarse"])


# ---- external data: nothing outside the model folder is read (issue 14) ---------------------------------
def _external_copy(tiny_repo, folder, location="coarse.weights"):
    """A copy of the tiny repository whose coarse.onnx keeps its initializers in ``location``."""
    import shutil

    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    for f in tiny_repo.iterdir():
        shutil.copy(f, folder / f.name)
    model = onnx.load(str(folder / "coarse.onnx"))
    onnx.save(
        model,
        str(folder / "coarse.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="coarse.weights",
        size_threshold=0,
    )
    if location != "coarse.weights":
        model = onnx.load(str(folder / "coarse.onnx"), load_external_data=False)
        for t in model.graph.initializer:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
        (folder / "coarse.onnx").write_bytes(model.SerializeToString())
    return folder


def test_external_data_inside_the_folder_loads(tiny_repo, tmp_path):
    from cfcsp_sdk.io.onnx_external_data import external_data_locations

    repo = _external_copy(tiny_repo, tmp_path / "repo")
    locations = external_data_locations(repo / "coarse.onnx")
    assert len(locations) > 5 and {loc for _, loc in locations} == {"coarse.weights"}
    cfg = ModelConfig.from_file(repo / "config.json")
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    ref = get_backend("onnx").load_network(tiny_repo, "coarse", cfg.networks["coarse"])(x)
    out = get_backend("onnx").load_network(repo, "coarse", cfg.networks["coarse"])(x)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink", "ort_memory_marker", "missing"])
def test_external_data_outside_the_folder_is_refused_before_a_session(tiny_repo, tmp_path, where):
    from cfcsp_sdk import UnsafeFileError

    secret = tmp_path / "secret.bin"
    repo = tmp_path / "repo"
    location = {
        "parent": "../secret.bin",
        "absolute": str(secret),
        "symlink": "link.bin",
        "ort_memory_marker": "*/_ORT_MEM_ADDR_/*",
        "missing": "nothing.bin",
    }[where]
    _external_copy(tiny_repo, repo, location)
    secret.write_bytes((repo / "coarse.weights").read_bytes())  # the real weights, so only the place is wrong
    if where == "symlink":
        (repo / "link.bin").symlink_to(secret)
    cfg = ModelConfig.from_file(repo / "config.json")
    with pytest.raises(UnsafeFileError, match="external data of tensor"):
        get_backend("onnx").load_network(repo, "coarse", cfg.networks["coarse"])


def test_installed_onnxruntime_refuses_escaping_external_data_itself(tiny_repo, tmp_path):
    """The minimum onnxruntime in pyproject.toml has its own check (1.17 loaded ../ paths); this proves
    the installed one has it, as a second line behind ours."""
    secret = tmp_path / "secret.bin"
    repo = _external_copy(tiny_repo, tmp_path / "repo", "../secret.bin")
    secret.write_bytes((repo / "coarse.weights").read_bytes())
    with pytest.raises(Exception, match="(?i)external data"):
        ort.InferenceSession(str(repo / "coarse.onnx"), providers=["CPUExecutionProvider"])


def test_external_data_in_a_subgraph_is_found(tmp_path):
    """Tensors inside control-flow subgraphs (an If node's branch) are checked too."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cfcsp_sdk import UnsafeFileError
    from cfcsp_sdk.io.onnx_external_data import check_external_data, external_data_locations

    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["o"])],
        "b",
        [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])],
        [w],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["o2"])],
        "c",
        [],
        [helper.make_tensor_value_info("o2", TensorProto.FLOAT, [4])],
    )
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert external_data_locations(path) == [("w", "../../etc/passwd")]
    with pytest.raises(UnsafeFileError, match="'w'"):
        check_external_data(path)


def test_spinning_is_off_by_default_and_options_reach_the_session(tiny_repo):
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    for kwargs, spin in (({}, "0"), ({"allow_spinning": True}, "1")):
        b = get_backend("onnx", intra_op_num_threads=1, **kwargs)
        opts = b.load_network(tiny_repo, "coarse", cfg.networks["coarse"]).session.get_session_options()
        assert opts.intra_op_num_threads == 1
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == spin
        assert opts.get_session_config_entry("session.inter_op.allow_spinning") == spin
        assert b.describe()["allow_spinning"] is (spin == "1")
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(BackendError, match="intra_op_num_threads"):
            get_backend("onnx", intra_op_num_threads=bad)


@pytest.mark.parametrize("where", ["parent", "symlink"])
def test_installed_onnx_refuses_escaping_external_data_itself(tiny_repo, tmp_path, where):
    """onnx (the torch/dev extras, used when exporting) loads external data itself; 1.21 is the first
    release that refuses a symlink leading out (1.16-1.20.1 refuse ../ and absolute paths only)."""
    onnx = pytest.importorskip("onnx")
    secret = tmp_path / "secret.bin"
    repo = _external_copy(tiny_repo, tmp_path / "repo", "../secret.bin" if where == "parent" else "link.bin")
    secret.write_bytes((repo / "coarse.weights").read_bytes())
    if where == "symlink":
        (repo / "link.bin").symlink_to(secret)
    with pytest.raises(Exception, match="(?i)should be|symbolic link|outside"):
        onnx.load(str(repo / "coarse.onnx"))


def test_an_onnx_only_folder_needs_no_architecture(tiny_repo, tmp_path, face_crops):
    """A model folder with only .onnx files and no architecture ids loads under backend='onnx' with real
    ONNX Runtime sessions and gives the full repository's predictions (config.py refused it before)."""
    import json
    import shutil

    from cfcsp_sdk import Recognizer
    from cfcsp_sdk.backends.onnx_backend import OnnxNetwork

    repo = tmp_path / "onnx-only"
    repo.mkdir()
    for f in tiny_repo.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, repo / f.name)
    cfg = json.loads((repo / "config.json").read_text())
    for net in cfg["networks"].values():
        del net["architecture"]
    cfg["networks"]["negative"]["args"] = {}
    (repo / "config.json").write_text(json.dumps(cfg))
    rec = Recognizer(repo, backend="onnx")
    assert all(isinstance(n, OnnxNetwork) for n in rec.cascade.networks.values())
    assert all(n.session.get_inputs()[0].shape[1] == 3 for n in rec.cascade.networks.values())
    got = rec.predict_faces(face_crops)
    ref = Recognizer(tiny_repo, backend="onnx").predict_faces(face_crops)
    assert [p.label for p in got] == [p.label for p in ref]
    assert np.allclose(
        [list(p.probabilities.values()) for p in got], [list(p.probabilities.values()) for p in ref], atol=1e-6
    )
