"""cfcsp-sdk: facial expression recognition in video with CFC-SP (coarse-to-fine cascaded networks
with smooth predicting, arXiv 2203.13052)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cfcsp_sdk.errors import (
    BackendError,
    CfcspError,
    InvalidInputError,
    MediaError,
    MediaWarning,
    ModelConfigError,
    ModelNotFoundError,
    UnsafeFileError,
    UnsafePickleError,
)

if TYPE_CHECKING:
    from cfcsp_sdk.cascade import Cascade, CascadeOutput
    from cfcsp_sdk.config import ModelConfig
    from cfcsp_sdk.io.frame_source import FrameSource
    from cfcsp_sdk.io.video import Frame
    from cfcsp_sdk.pipeline import FrameRows, VideoPipeline
    from cfcsp_sdk.recognizer import Recognizer
    from cfcsp_sdk.results import (
        DetectedFace,
        FaceBatchResult,
        FacePrediction,
        FaceRow,
        ImageResult,
        VideoResult,
    )
    from cfcsp_sdk.smoother import Smoother, softmax
    from cfcsp_sdk.views import Views

# The one place the version is written: pyproject.toml reads it from here (setuptools' dynamic version)
__version__ = "0.1.0"

# The heavy parts (numpy, OpenCV, ONNX Runtime) are imported on first use, not with the package: the
# ``cfcsp`` command then starts in a few milliseconds, with its Ctrl-C handling in place before any of it
_LAZY = {
    "Cascade": "cfcsp_sdk.cascade",
    "CascadeOutput": "cfcsp_sdk.cascade",
    "ModelConfig": "cfcsp_sdk.config",
    "Frame": "cfcsp_sdk.io.video",
    "FrameSource": "cfcsp_sdk.io.frame_source",
    "FrameRows": "cfcsp_sdk.pipeline",
    "VideoPipeline": "cfcsp_sdk.pipeline",
    "Recognizer": "cfcsp_sdk.recognizer",
    "DetectedFace": "cfcsp_sdk.results",
    "FaceBatchResult": "cfcsp_sdk.results",
    "FacePrediction": "cfcsp_sdk.results",
    "FaceRow": "cfcsp_sdk.results",
    "ImageResult": "cfcsp_sdk.results",
    "VideoResult": "cfcsp_sdk.results",
    "Smoother": "cfcsp_sdk.smoother",
    "softmax": "cfcsp_sdk.smoother",
    "Views": "cfcsp_sdk.views",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cfcsp_sdk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BackendError",
    "Cascade",
    "CascadeOutput",
    "CfcspError",
    "DetectedFace",
    "FaceBatchResult",
    "FacePrediction",
    "FaceRow",
    "Frame",
    "FrameRows",
    "FrameSource",
    "ImageResult",
    "InvalidInputError",
    "MediaError",
    "MediaWarning",
    "ModelConfig",
    "ModelConfigError",
    "ModelNotFoundError",
    "Recognizer",
    "Smoother",
    "UnsafeFileError",
    "UnsafePickleError",
    "VideoPipeline",
    "VideoResult",
    "Views",
    "__version__",
    "softmax",
]
