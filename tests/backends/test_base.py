"""Backends are plugins: built-ins, run-time registration, and discovery through entry-point metadata."""

import sys
import textwrap

import pytest

from cfcsp_sdk import BackendError
from cfcsp_sdk.backends import ENTRY_POINT_GROUP, Backend, available_backends, get_backend, register_backend


def test_builtins_are_listed_and_unknown_names_fail_clearly():
    assert {"onnx", "torch"} <= set(available_backends())
    with pytest.raises(BackendError, match="unknown backend 'tensorrtx'.*available: "):
        get_backend("tensorrtx")


def test_entry_point_backend_is_found_and_used(tmp_path, monkeypatch, tiny_repo, face_crops):
    """A third-party distribution, installed as metadata on sys.path, adds a backend without our code changing."""
    pkg = tmp_path / "site"
    (pkg / "thirdparty_backend").mkdir(parents=True)
    (pkg / "thirdparty_backend" / "__init__.py").write_text(
        textwrap.dedent("""
        from cfcsp_sdk.backends.onnx_backend import OnnxBackend

        class CountingOnnxBackend(OnnxBackend):
            name = "counting-onnx"
            loaded = []

            def load_network(self, folder, name, spec):
                self.loaded.append(name)
                return super().load_network(folder, name, spec)
    """)
    )
    dist = pkg / "thirdparty_backend-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-backend\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ncounting-onnx = thirdparty_backend:CountingOnnxBackend\n"
    )
    monkeypatch.syspath_prepend(str(pkg))
    assert "counting-onnx" in available_backends()
    backend = get_backend("counting-onnx", intra_op_num_threads=1)
    assert type(backend).__name__ == "CountingOnnxBackend"

    from cfcsp_sdk import Recognizer

    rec = Recognizer(tiny_repo, backend="counting-onnx")
    assert sorted(rec.backend.loaded) == ["coarse", "negative"]
    ref = Recognizer(tiny_repo, backend="onnx").predict_faces(face_crops)
    got = rec.predict_faces(face_crops)
    assert [p.label for p in got] == [p.label for p in ref]
    sys.modules.pop("thirdparty_backend", None)


def test_broken_entry_point_is_a_backend_error(tmp_path, monkeypatch):
    dist = tmp_path / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendError, match="failed to load"):
        get_backend("broken")


def test_runtime_registration_and_factory_checks():
    from cfcsp_sdk.backends import BACKENDS
    from cfcsp_sdk.registry import RegistryOverwriteWarning

    class Echo(Backend):
        name = "echo"
        weights_suffix = ".onnx"

        def load_network(self, folder, name, spec):
            raise NotImplementedError

    try:
        register_backend("echo", Echo)
        assert isinstance(get_backend("echo"), Echo)
        register_backend("not-a-backend", lambda: object())
        with pytest.raises(BackendError, match="not a Backend"):
            get_backend("not-a-backend")
        with pytest.warns(
            RegistryOverwriteWarning,
            match="backend 'onnx' .built in as cfcsp_sdk.backends.onnx_backend:OnnxBackend. is replaced",
        ):
            register_backend("onnx", Echo)
        assert isinstance(get_backend("onnx"), Echo)
    finally:
        for name in ("echo", "not-a-backend", "onnx"):
            BACKENDS.unregister(name)
    assert type(get_backend("onnx")).__name__ == "OnnxBackend"
