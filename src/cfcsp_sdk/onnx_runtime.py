"""ONNX Runtime session options shared by every ONNX Runtime session of the SDK: the expression
networks (backends/onnx_backend.py) and the face detectors' networks (faces/). It sits below both, so
the detectors do not import the backends."""

from __future__ import annotations

import onnxruntime as ort

from cfcsp_sdk.errors import BackendError

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(
    intra_op_num_threads: int = 0,
    inter_op_num_threads: int = 0,
    allow_spinning: bool = False,
    graph_optimization_level: str = "all",
) -> ort.SessionOptions:
    """The ``onnxruntime.SessionOptions`` every ONNX Runtime session of the SDK is made with (our
    networks and the face detectors' networks).

    Intra- and inter-op spinning are off unless ``allow_spinning``: ONNX Runtime's default keeps its
    worker threads busy-waiting between operators, which on a small CPU takes the cores that video
    decoding, detection and the other sessions need. Measured on a 2-core machine (bench/bench_video.py):
    1.6x the frames/s at half the CPU time, 2x under load (docs/speed.md).

    Raises:
        BackendError: a negative thread count or an unknown ``graph_optimization_level``.
    """
    if graph_optimization_level not in _LEVELS:
        raise BackendError(
            f"graph_optimization_level must be one of {', '.join(_LEVELS)}, got {graph_optimization_level!r}"
        )
    for name, value in (("intra_op_num_threads", intra_op_num_threads), ("inter_op_num_threads", inter_op_num_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BackendError(f"{name} must be an int >= 0 (0: ONNX Runtime decides), got {value!r}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_num_threads
    opts.inter_op_num_threads = inter_op_num_threads
    opts.graph_optimization_level = _LEVELS[graph_optimization_level]
    opts.log_severity_level = 3
    spin = "1" if allow_spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return opts
