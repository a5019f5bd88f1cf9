"""ONNX Runtime backend (the default): reads ``<network>.onnx``; needs no torch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from cfcsp_sdk.backends.base import Backend, Network, check_network_input
from cfcsp_sdk.config import NetworkSpec
from cfcsp_sdk.errors import BackendError
from cfcsp_sdk.io.onnx_external_data import check_external_data
from cfcsp_sdk.onnx_runtime import session_options

_DEVICE_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OnnxNetwork:
    """One ONNX Runtime session with a single float32 input and a logits output."""

    def __init__(self, session: ort.InferenceSession, num_classes: int) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.num_classes = num_classes

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        check_network_input(batch)
        if len(batch) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        try:
            (out,) = self.session.run([self.output_name], {self.input_name: batch})
        except Exception as exc:  # ORT raises its own types for shape mismatches etc.
            raise BackendError(f"ONNX Runtime failed on a batch of shape {batch.shape}: {exc}") from exc
        return np.asarray(out, dtype=np.float32)


class OnnxBackend(Backend):
    """ONNX Runtime sessions.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (needs onnxruntime-gpu; an error if CUDA is not available).
        providers: explicit execution providers, overriding ``device``.
        intra_op_num_threads: threads inside one operator (0 lets ONNX Runtime decide: one per
            physical core).
        inter_op_num_threads: threads across operators.
        graph_optimization_level: ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"``.
        allow_spinning: let idle worker threads busy-wait for the next operator (ONNX Runtime's own
            default). Off by default: see :func:`session_options`.
    """

    name = "onnx"
    weights_suffix = ".onnx"

    def __init__(
        self,
        device: str = "cpu",
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        intra_op_num_threads: int = 0,
        inter_op_num_threads: int = 0,
        graph_optimization_level: str = "all",
        allow_spinning: bool = False,
    ) -> None:
        available = ort.get_available_providers()
        if providers is None:
            if device not in _DEVICE_PROVIDERS:
                raise BackendError(f"onnx backend: unknown device {device!r}; use 'cpu' or 'cuda'")
            providers = _DEVICE_PROVIDERS[device]
        wanted = [p if isinstance(p, str) else p[0] for p in providers]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise BackendError(
                f"ONNX Runtime here lacks {', '.join(missing)} (available: {', '.join(available)}); "
                "for CUDA install onnxruntime-gpu"
            )
        self.providers = list(providers)
        self.options = session_options(
            intra_op_num_threads, inter_op_num_threads, allow_spinning, graph_optimization_level
        )

    def load_network(self, folder: Path, name: str, spec: NetworkSpec) -> Network:
        path = self.weights_path(folder, name)
        check_external_data(path)  # before ONNX Runtime follows any location (older releases follow any)
        try:
            session = ort.InferenceSession(str(path), sess_options=self.options, providers=self.providers)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime could not load {path}: {exc}") from exc
        return OnnxNetwork(session, spec.num_classes)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "onnxruntime": ort.__version__,
            "providers": [p if isinstance(p, str) else p[0] for p in self.providers],
            "intra_op_num_threads": self.options.intra_op_num_threads,
            "inter_op_num_threads": self.options.inter_op_num_threads,
            "allow_spinning": self.options.get_session_config_entry("session.intra_op.allow_spinning") == "1",
            "available_providers": ort.get_available_providers(),
        }
