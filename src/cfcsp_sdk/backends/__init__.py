"""Inference backends: plugins that turn a model repository's network files into callables.

Built in: ``onnx`` (ONNX Runtime, the default; no torch needed) and ``torch``. Third-party packages
add backends through the ``cfcsp_sdk.backends`` entry-point group (see docs/backends.md).
"""

from cfcsp_sdk.backends.base import (
    BACKENDS,
    ENTRY_POINT_GROUP,
    Backend,
    Network,
    available_backends,
    check_network_input,
    get_backend,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "Backend",
    "Network",
    "available_backends",
    "check_network_input",
    "get_backend",
    "register_backend",
]
