"""Writing model repositories from torch modules: safetensors weights, ONNX graphs (dynamic batch), config.

Needs the ``torch`` extra.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from cfcsp_sdk.config import ModelConfig
from cfcsp_sdk.errors import ModelConfigError
from cfcsp_sdk.hub import CARD_NAME
from cfcsp_sdk.io.files import atomic_path, write_bytes_atomic, write_text_atomic

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"


WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16}
MIN_HALF_ELEMENTS = 16  # with float16 storage, smaller tensors stay float32 (in both formats)


def _check_weights_dtype(weights_dtype: str) -> None:
    if weights_dtype not in WEIGHT_DTYPES:
        raise ModelConfigError(
            f"weights_dtype must be one of {sorted(WEIGHT_DTYPES)}, got {weights_dtype!r}", field="weights_dtype"
        )


def save_safetensors(module: torch.nn.Module, path: str | Path, weights_dtype: str = "float32") -> Path:
    """Save a module's parameters and float buffers (not BatchNorm step counters) as safetensors.

    ``weights_dtype="float16"`` stores them in half precision (half the file size); the loaders cast
    them back to float32, so inference still computes in float32. Tensors of fewer than
    ``MIN_HALF_ELEMENTS`` values (biases of small heads) stay float32, as in the ONNX file, so both
    files hold the same values.
    """
    _check_weights_dtype(weights_dtype)
    state = {
        name: t.detach()
        .cpu()
        .to(WEIGHT_DTYPES[weights_dtype] if t.numel() >= MIN_HALF_ELEMENTS else torch.float32)
        .contiguous()
        .clone()
        for name, t in module.state_dict().items()
        if t.dtype.is_floating_point
    }
    # written with the umask's permissions, like the folder's other files (safetensors' own save_file
    # leaves it readable by its owner only, which breaks folders shared between users or served over
    # HTTP), whole or not at all
    return write_bytes_atomic(path, safetensors_bytes(state))


def export_onnx(
    module: torch.nn.Module, path: str | Path, channels: int, height: int, width: int, weights_dtype: str = "float32"
) -> Path:
    """Export ``module`` (eval mode) to ONNX with input ``input`` [batch, C, H, W] and output ``logits``.

    With ``weights_dtype="float16"`` the weights are stored in half precision, each followed by a Cast
    to float32 in the graph (ONNX Runtime folds the casts when the session is created, so inference
    computes in float32 as with float32 storage). Needs the ``onnx`` package.

    The graph keeps the module's own parameters (BatchNorm stays a node; ONNX Runtime fuses it into the
    convolution when the session is created): were it folded into the convolution weights before they are
    rounded to float16, the ONNX file and the safetensors file would hold different roundings and the two
    backends would disagree by about 1e-3 in the logits.
    """
    _check_weights_dtype(weights_dtype)
    module = module.eval()
    example = torch.zeros(2, channels, height, width)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,  # the module is in eval mode: inference nodes
        )
        if weights_dtype == "float16":
            store_initializers_as_float16(tmp)
    return Path(path)


def store_initializers_as_float16(path: str | Path, min_elements: int = MIN_HALF_ELEMENTS) -> None:
    """Rewrite an ONNX file so that its float32 initializers of ``min_elements`` or more values are
    stored as float16 and cast back to float32 by a Cast node at the start of the graph."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name=f"{init.name}__float16")
        kept.append(half)
        casts.append(
            helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__to_float32")
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())


def write_model_repository(
    folder: str | os.PathLike[str],
    config: ModelConfig,
    modules: Mapping[str, torch.nn.Module],
    card: str | None = None,
    weights_dtype: str = "float32",
) -> Path:
    """Write a complete model repository: config.json, ``<net>.safetensors`` and ``<net>.onnx`` for
    every network of ``config``, and the model card ``README.md`` if ``card`` is given.

    ``weights_dtype``: ``"float32"`` or ``"float16"`` storage of the weights in both formats (see
    :func:`save_safetensors` and :func:`export_onnx`); inference computes in float32 either way.
    """
    _check_weights_dtype(weights_dtype)
    missing = sorted(set(config.networks) - set(modules))
    if missing:
        raise ModelConfigError(f"no module given for networks {missing}", field="networks")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    config = ModelConfig.from_dict(config.to_dict())  # validates before anything is written
    h, w = config.preprocessing.input_size
    for name in config.networks:
        module = modules[name].eval()
        save_safetensors(module, out / f"{name}.safetensors", weights_dtype)
        export_onnx(module, out / f"{name}.onnx", config.preprocessing.channels, h, w, weights_dtype)
    config.save(out)
    if card is not None:
        write_text_atomic(out / CARD_NAME, card)
    return out
