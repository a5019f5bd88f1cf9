"""Backends are plugins: register one at run time (or ship it in a package's entry points)."""

from pathlib import Path

from cfcsp_sdk import Recognizer
from cfcsp_sdk.backends import available_backends, register_backend
from cfcsp_sdk.backends.onnx_backend import OnnxBackend


class SingleThreadOnnx(OnnxBackend):
    """ONNX Runtime pinned to one thread, e.g. to run many recognisers side by side."""

    name = "onnx-1thread"

    def __init__(self) -> None:
        super().__init__(intra_op_num_threads=1, inter_op_num_threads=1)

    def load_network(self, folder: Path, name: str, spec):
        print(f"loading {name} ({spec.architecture}) from {folder.name}")
        return super().load_network(folder, name, spec)


register_backend("onnx-1thread", SingleThreadOnnx)
print("backends:", available_backends())
rec = Recognizer(backend="onnx-1thread")
print(rec.backend.describe())
