"""PyTorch backend: builds each network from the architecture registry and loads ``<network>.safetensors``.

Needs the ``torch`` extra (``pip install 'cfcsp-sdk[torch]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cfcsp_sdk.backends.base import Backend, Network, check_network_input
from cfcsp_sdk.config import NetworkSpec
from cfcsp_sdk.errors import BackendError, ModelConfigError, state_mismatch

try:
    import torch
    from safetensors.torch import load_file
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise BackendError("the torch backend needs the torch extra: pip install 'cfcsp-sdk[torch]'") from exc


def load_state_dict_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module``, naming missing, unexpected and mis-shaped tensors in the error.

    BatchNorm's ``num_batches_tracked`` counters are not needed for inference and may be absent.
    """
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.endswith("num_batches_tracked"))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    error = state_mismatch(source, "the architecture", missing, unexpected, shapes)
    if error:
        raise error
    module.load_state_dict(state, strict=False)


class TorchNetwork:
    """A torch module in eval mode behind the numpy-in, numpy-out network interface."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module = module.eval().to(device)
        self.device = device

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        check_network_input(batch)
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        try:
            out = self.module(x)
        except RuntimeError as exc:
            raise BackendError(f"torch failed on a batch of shape {batch.shape}: {exc}") from exc
        return out.float().cpu().numpy()


class TorchBackend(Backend):
    """Runs networks with PyTorch.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...; an error if it is not available.
        num_threads: CPU threads for torch (``None`` keeps torch's setting).
    """

    name = "torch"
    weights_suffix = ".safetensors"

    def __init__(self, device: str = "cpu", num_threads: int | None = None) -> None:
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise BackendError(f"torch backend: bad device {device!r}: {exc}") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch backend: device 'cuda' asked for but torch.cuda.is_available() is False")
        if self.device.type == "mps" and not torch.backends.mps.is_available():
            raise BackendError("torch backend: device 'mps' asked for but it is not available")
        if num_threads is not None:
            torch.set_num_threads(num_threads)

    def build_module(self, folder: Path, name: str, spec: NetworkSpec) -> torch.nn.Module:
        """The network as a torch module with its weights loaded (also used for ONNX export)."""
        from cfcsp_sdk.models import build_network

        path = self.weights_path(folder, name)
        try:
            module = build_network(spec.architecture, spec.num_classes, spec.args)
        except ModelConfigError as exc:  # an unknown or missing architecture id, or arguments it refuses
            field = exc.field or "args"
            message = str(exc).removeprefix(f"{exc.field}: ")
            raise ModelConfigError(message, field=f"networks.{name}.{field}") from exc
        except (RuntimeError, ValueError, TypeError, ZeroDivisionError, MemoryError) as exc:
            # the builder's own complaint (a negative width, heads not dividing a dimension ...)
            raise ModelConfigError(
                f"architecture {spec.architecture!r} cannot be built with these arguments: {type(exc).__name__}: {exc}",
                field=f"networks.{name}.args",
            ) from exc
        try:
            state = load_file(str(path))
        except Exception as exc:
            raise BackendError(f"could not read safetensors file {path}: {exc}") from exc
        load_state_dict_strict(module, state, str(path))
        return module.eval()

    def load_network(self, folder: Path, name: str, spec: NetworkSpec) -> Network:
        return TorchNetwork(self.build_module(folder, name, spec), self.device)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "torch": torch.__version__,
            "device": str(self.device),
            "cuda_available": torch.cuda.is_available(),
            "threads": torch.get_num_threads(),
        }
