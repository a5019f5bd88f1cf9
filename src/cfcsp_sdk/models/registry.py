"""Architecture registry: config.json names an architecture id and its arguments; this builds it.

Built-in architectures are registered by import path so that importing this module never imports
torch; a builder is only imported when a network of that id is built. Packages add architectures
through the ``cfcsp_sdk.architectures`` entry-point group, or at run time with
:func:`register_architecture`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cfcsp_sdk.errors import ModelConfigError
from cfcsp_sdk.registry import Registry

ENTRY_POINT_GROUP = "cfcsp_sdk.architectures"

ARCHITECTURES: Registry[Callable[..., Any]] = Registry(
    "architecture",
    ENTRY_POINT_GROUP,
    {
        "cfcsp-compact-cnn": "cfcsp_sdk.models.compact_cnn:build_compact_cnn",
        "cfcsp-compact-cnn-ensemble": "cfcsp_sdk.models.compact_cnn:build_compact_cnn_ensemble",
        "cfcsp-ensemble": "cfcsp_sdk.models.ensemble:build_ensemble",
        "cfcsp-resnet": "cfcsp_sdk.models.resnet:build_face_resnet",
        "swin-s-cfcsp": "cfcsp_sdk.models.swin:build_swin_cfcsp",
    },
    error=lambda message: ModelConfigError(message, field="architecture"),
)
"""Every architecture builder ``fn(num_classes=..., **args) -> torch.nn.Module`` by id."""


def register_architecture(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder ``fn(num_classes=..., **args) -> torch.nn.Module`` under ``name``;
    warns with :class:`~cfcsp_sdk.registry.RegistryOverwriteWarning` if the id was already known."""
    return ARCHITECTURES.register(name)


def list_architectures() -> list[str]:
    """Ids of every architecture that can be built."""
    return ARCHITECTURES.names()


def build_network(name: str | None, num_classes: int, args: dict[str, Any] | None = None) -> Any:
    """Build an untrained torch module of architecture ``name`` with ``num_classes`` outputs.

    Raises:
        ModelConfigError: ``name`` is unknown (or ``None``: the config names no architecture, which only
            backends that build networks need), or the builder refuses ``args``.
    """
    if name is None:
        raise ModelConfigError(
            "names no architecture; the torch backend builds the network from one (ONNX files need none)",
            field="architecture",
        )
    builder = ARCHITECTURES.get(name)
    try:
        return builder(num_classes=num_classes, **(args or {}))
    except TypeError as exc:
        raise ModelConfigError(f"bad arguments for architecture {name!r}: {exc}", field="args") from exc
