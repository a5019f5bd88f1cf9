"""cfcsp-sdk: facial expression recognition in video with CFC-SP (coarse-to-fine cascaded networks
with smooth predicting, arXiv 2203.13052)."""

from cfcsp_sdk.cascade import Cascade, CascadeOutput
from cfcsp_sdk.config import ModelConfig
from cfcsp_sdk.errors import (
    BackendError,
    CfcspError,
    InvalidInputError,
    MediaError,
    ModelConfigError,
    ModelNotFoundError,
    UnsafeFileError,
    UnsafePickleError,
)
from cfcsp_sdk.recognizer import Recognizer
from cfcsp_sdk.results import FaceBatchResult, FacePrediction
from cfcsp_sdk.smoother import Smoother

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Cascade",
    "CascadeOutput",
    "CfcspError",
    "FaceBatchResult",
    "FacePrediction",
    "InvalidInputError",
    "MediaError",
    "ModelConfig",
    "ModelConfigError",
    "ModelNotFoundError",
    "Recognizer",
    "Smoother",
    "UnsafeFileError",
    "UnsafePickleError",
    "__version__",
]
