"""Convert the CFC-SP authors' PaddlePaddle Swin-S checkpoints into a model repository.

``.pdparams`` files are pickles; they are read with :mod:`cfcsp_sdk.safe_pickle`, which admits
only numpy arrays and plain containers. Paddle stores Linear weights as ``[in, out]``; they are
transposed to torch's ``[out, in]``. The relative position bias tables ``[169, heads]`` and the
convolution kernels (OIHW in both frameworks) keep their layout. Buffers (``relative_position_index``,
``attn_mask``) and Paddle's ``StructuredToParameterName@@`` entry are dropped. Every tensor the model
needs must be present with the right shape; the error names what is missing, unexpected or mis-shaped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cfcsp_sdk.config import ModelConfig
from cfcsp_sdk.errors import UnsafePickleError, state_mismatch
from cfcsp_sdk.results import AFFWILD2_LABELS
from cfcsp_sdk.safe_pickle import restricted_loads

COARSE_LABELS = ["Neutral", "Happiness", "Surprise", "Other", "Negative"]
NEGATIVE_LABELS = ["Anger", "Disgust", "Fear", "Sadness"]
SWIN_S_ARGS: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 4,
    "in_channels": 3,
    "embed_dim": 96,
    "depths": [2, 2, 18, 2],
    "num_heads": [3, 6, 12, 24],
    "window_size": 7,
}
# The ArcFace / InsightFace 112 x 112 five-point template, scaled to 224 x 224. The paper aligns with
# MTCNN's five landmarks; its exact template is not published, so this widely used one is our choice.
TEMPLATE_224 = [[76.58, 103.40], [147.06, 103.00], [112.06, 143.48], [83.10, 184.74], [141.46, 184.40]]
DROPPED_SUFFIXES = ("relative_position_index", "attn_mask")
PUBLISHED = {
    "coarse": ("ABAW3_SwinS_Coarse_Iter10k.pdparams", "val top-1 57.96 on coarse labels"),
    "negative": ("ABAW3_SwinS_Negative_Iter20k.pdparams", "val top-1 60.17 on negative frames"),
}


def read_pdparams(path: str | os.PathLike[str], prefer_ema: bool = False) -> dict[str, np.ndarray]:
    """Read a ``.pdparams`` checkpoint safely into ``{name: array}``.

    Unwraps ``{"model": ...}`` / ``{"model_ema": ...}`` (``model`` unless ``prefer_ema``) and the
    ``(tensor name, array)`` pairs Paddle writes inside nested dicts, drops
    ``StructuredToParameterName@@`` and buffer entries, and refuses anything that is not an array.
    """
    data = Path(path).read_bytes()
    obj = restricted_loads(data)
    if not isinstance(obj, dict):
        raise UnsafePickleError(f"{path}: expected a dict of arrays, found {type(obj).__name__}")
    for key in ("model_ema", "model") if prefer_ema else ("model", "model_ema"):
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    params = {}
    for name, value in obj.items():
        if name == "StructuredToParameterName@@" or str(name).endswith(DROPPED_SUFFIXES):
            continue
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            value = value[1]  # nested paddle.save writes (paddle tensor name, array)
        if not isinstance(value, np.ndarray):
            raise UnsafePickleError(f"{path}: entry {name!r} is a {type(value).__name__}, not an array")
        params[str(name)] = value
    return params


def paddle_to_torch_state(params: Mapping[str, np.ndarray], module: Any, source: str = "checkpoint") -> dict[str, Any]:
    """Map Paddle arrays onto ``module``'s parameter names, transposing Linear weights."""
    import torch

    linear_weights = {f"{n}.weight" for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)}
    expected = {k: v for k, v in module.state_dict().items()}
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    state, wrong = {}, []
    for name, ref in expected.items():
        if name not in params:
            continue
        arr = np.asarray(params[name])
        if name in linear_weights and arr.ndim == 2:
            arr = arr.T
        if tuple(arr.shape) != tuple(ref.shape):
            wrong.append(f"{name}: {tuple(params[name].shape)} (Paddle) vs {tuple(ref.shape)} expected")
            continue
        state[name] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    error = state_mismatch(source, "the Swin CFC network", missing, unexpected, wrong)
    if error:
        raise error
    return state


def affwild2_config(arch_args: Mapping[str, Any] | None = None, name: str = "cfcsp-abaw3-swin-s") -> ModelConfig:
    """The 8-label Aff-Wild2 CFC-SP config of the authors' released models."""
    args = dict(SWIN_S_ARGS if arch_args is None else arch_args)
    size = args.get("image_size", 224)
    pts = [[x * size / 224, y * size / 224] for x, y in TEMPLATE_224]
    return ModelConfig.from_dict(
        {
            "format_version": 1,
            "name": name,
            "labels": list(AFFWILD2_LABELS),
            "cascade": {
                "coarse": {"network": "coarse", "labels": COARSE_LABELS, "to_final": [0, 4, 6, 7, None]},
                "groups": [
                    {"coarse_index": 4, "network": "negative", "labels": NEGATIVE_LABELS, "to_final": [1, 2, 3, 5]}
                ],
                "rule": "hard",
                "fine_policy": "when_needed",
            },
            "preprocessing": {
                "input_size": [size, size],
                "color": "rgb",
                "interpolation": "cubic",
                "scale": 1 / 255,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "face_template": {"size": [size, size], "points": pts},
            },
            "smoothing": {"window": 5, "mode": "centered"},
            "networks": {
                "coarse": {"architecture": "swin-s-cfcsp", "num_classes": 5, "args": args},
                "negative": {"architecture": "swin-s-cfcsp", "num_classes": 4, "args": args},
            },
        }
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_card(sources: Mapping[str, Path], config: ModelConfig) -> str:
    rows = "\n".join(
        f"| {net} | `{p.name}` | `{_sha256(p)}` | {PUBLISHED[net][1]} (authors' figure for `{PUBLISHED[net][0]}`) |"
        for net, p in sources.items()
    )
    return f"""---
library_name: cfcsp-sdk
tags: [facial-expression-recognition, cfc-sp, aff-wild2, abaw, swin-transformer, onnx]
---
# {config.name}

The CFC-SP models of Xue, Tan, Zhu, Ma and Guo, "Coarse-to-Fine Cascaded Networks with Smooth
Predicting for Video Facial Expression Recognition" (arXiv 2203.13052; ABAW3 at CVPR 2022, 3rd place
in the expression challenge), converted from the authors' PaddlePaddle release (BR-IDL/PaddleViT,
facial_expression/) with `cfcsp convert-paddle`.

## Provenance
| network | source file | sha256 | published validation figure |
| --- | --- | --- | --- |
{rows}

The weights are the authors'; check their release terms before redistributing.

## Model
Swin-S (patch 4, window 7, dim 96, depths 2-2-18-2, heads 3-6-12-24), no final LayerNorm, mean of the
last-stage tokens, linear head. Coarse: {", ".join(COARSE_LABELS)}. Negative: {", ".join(NEGATIVE_LABELS)}.
Final labels (Aff-Wild2 order): {", ".join(AFFWILD2_LABELS)}.

## Preprocessing
Faces aligned by five landmarks (MTCNN in the paper) onto a 224 x 224 template (the ArcFace 112 x 112
template scaled by 2: the paper's exact template is not published), RGB, bicubic, ImageNet mean and
std. SP smoothing window 5 (w = 2).

## Intended use
Research on facial expressions in video (Aff-Wild2 / ABAW).
"""


def convert_paddle(
    coarse: str | os.PathLike[str],
    negative: str | os.PathLike[str],
    out: str | os.PathLike[str],
    prefer_ema: bool = False,
    arch_args: Mapping[str, Any] | None = None,
) -> Path:
    """Convert the coarse and negative ``.pdparams`` into a complete model repository at ``out``."""
    from cfcsp_sdk.export import write_model_repository
    from cfcsp_sdk.models import build_network

    config = affwild2_config(arch_args)
    sources = {"coarse": Path(coarse), "negative": Path(negative)}
    modules = {}
    for net, path in sources.items():
        spec = config.networks[net]
        module = build_network(spec.architecture, spec.num_classes, spec.args)
        state = paddle_to_torch_state(read_pdparams(path, prefer_ema), module, str(path))
        module.load_state_dict(state, strict=True)
        modules[net] = module.eval()
    return write_model_repository(out, config, modules, card=model_card(sources, config))
