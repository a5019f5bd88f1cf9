"""The backend protocol and the registry that finds backends, built-in or from entry points."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cfcsp_sdk.config import NetworkSpec
from cfcsp_sdk.errors import BackendError, InvalidInputError, require_accepted_options
from cfcsp_sdk.io.files import file_inside
from cfcsp_sdk.registry import Registry

ENTRY_POINT_GROUP = "cfcsp_sdk.backends"


class Network(Protocol):
    """A loaded network: float32 NCHW batch in, float32 [N, num_classes] logits out."""

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def check_network_input(batch: object) -> np.ndarray:
    """``batch`` if it is a float32 NCHW numpy array, else :class:`InvalidInputError` (for backends'
    networks to call before running)."""
    if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.dtype != np.float32:
        got = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise InvalidInputError(f"network input must be a float32 NCHW numpy array, got {got}")
    return batch


class Backend(ABC):
    """Loads the networks of a model repository for one runtime.

    Subclasses set :attr:`name` and :attr:`weights_suffix` (the file each network is read from,
    ``<network name><suffix>`` inside the repository) and implement :meth:`load_network`.
    Constructor keyword arguments are the backend's options (device, threads, providers, ...).
    """

    name: str = ""
    weights_suffix: str = ""

    @abstractmethod
    def load_network(self, folder: Path, name: str, spec: NetworkSpec) -> Network:
        """Load network ``name`` described by ``spec`` from the repository ``folder``."""

    def describe(self) -> dict[str, Any]:
        """What this backend runs on, for ``cfcsp info`` and logs."""
        return {"name": self.name}

    def weights_path(self, folder: Path, name: str) -> Path:
        """``folder/<name><weights_suffix>``, checked to be a file that lies inside ``folder``.

        Raises:
            UnsafeFileError: the name or a symlink would lead outside the folder.
            BackendError: the file is missing.
        """
        path = file_inside(folder, f"{name}{self.weights_suffix}", f"weights file of network {name!r}")
        if not path.is_file():
            raise BackendError(f"backend {self.name!r} needs {path.name} in {folder}, which is missing")
        return path


BackendFactory = Callable[..., Backend]

BACKENDS: Registry[BackendFactory] = Registry(
    "backend",
    ENTRY_POINT_GROUP,
    {"onnx": "cfcsp_sdk.backends.onnx_backend:OnnxBackend", "torch": "cfcsp_sdk.backends.torch_backend:TorchBackend"},
    error=BackendError,
)
"""Every backend by name; run-time registrations win over built-ins, which win over entry points."""


def register_backend(name: str, factory: BackendFactory) -> BackendFactory:
    """Register a backend factory (usually a :class:`Backend` subclass) under ``name`` at run time;
    warns with :class:`~cfcsp_sdk.registry.RegistryOverwriteWarning` if the name was already known."""
    return BACKENDS.register(name, factory)


def available_backends() -> list[str]:
    """Names of every backend: built-in, registered at run time and from installed entry points."""
    return BACKENDS.names()


def get_backend(name: str | Backend = "onnx", **options: Any) -> Backend:
    """Make the backend called ``name`` with ``options`` (or pass a ready :class:`Backend` through).

    Run-time registrations win over built-ins, which win over entry points of the same name.
    """
    if isinstance(name, Backend):
        if options:
            raise BackendError("backend options go to the backend's constructor, not with an instance")
        return name
    factory: Any = BACKENDS.get(name)
    require_accepted_options(factory, options, f"backend {name!r}")
    backend = factory(**options)
    if not isinstance(backend, Backend):
        raise BackendError(f"backend {name!r} factory returned {type(backend).__name__}, not a Backend")
    return backend
