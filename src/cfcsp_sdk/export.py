"""Writing model repositories from torch modules: safetensors weights, ONNX graphs (dynamic batch), config.

Needs the ``torch`` extra.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import save as safetensors_bytes

from cfcsp_sdk.config import ModelConfig
from cfcsp_sdk.errors import ModelConfigError
from cfcsp_sdk.hub import CARD_NAME

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def save_safetensors(module: torch.nn.Module, path: str | Path) -> Path:
    """Save a module's parameters and float buffers (not BatchNorm step counters) as safetensors."""
    state = {
        name: t.detach().cpu().contiguous().clone()
        for name, t in module.state_dict().items()
        if t.dtype.is_floating_point
    }
    # written as a new file with the umask's permissions, like the folder's other files (safetensors' own
    # save_file leaves it readable by its owner only, which breaks folders shared between users or served
    # over HTTP), then moved into place so an interrupted save never leaves half a file under the real name
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    partial.write_bytes(safetensors_bytes(state))
    os.replace(partial, path)
    return path


def export_onnx(module: torch.nn.Module, path: str | Path, channels: int, height: int, width: int) -> Path:
    """Export ``module`` (eval mode) to ONNX with input ``input`` [batch, C, H, W] and output ``logits``."""
    module = module.eval()
    example = torch.zeros(2, channels, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return Path(path)


def write_model_repository(
    folder: str | Path,
    config: ModelConfig,
    modules: Mapping[str, torch.nn.Module],
    card: str | None = None,
) -> Path:
    """Write a complete model repository: config.json, ``<net>.safetensors`` and ``<net>.onnx`` for
    every network of ``config``, and the model card ``README.md`` if ``card`` is given."""
    missing = sorted(set(config.networks) - set(modules))
    if missing:
        raise ModelConfigError(f"no module given for networks {missing}", field="networks")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    config = ModelConfig.from_dict(config.to_dict())  # validates before anything is written
    h, w = config.preprocessing.input_size
    for name in config.networks:
        module = modules[name].eval()
        save_safetensors(module, out / f"{name}.safetensors")
        export_onnx(module, out / f"{name}.onnx", config.preprocessing.channels, h, w)
    config.save(out)
    if card is not None:
        (out / CARD_NAME).write_text(card, encoding="utf-8")
    return out
