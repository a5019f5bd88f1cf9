"""Architecture registry: config.json names an architecture id and its arguments; this builds it.

Built-in architectures are registered by import path so that importing this module never imports
torch; a builder is only imported when a network of that id is built.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from cfcsp_sdk.errors import ModelConfigError

_BUILTIN: dict[str, str] = {
    "cfcsp-compact-cnn": "cfcsp_sdk.models.compact_cnn:build_compact_cnn",
    "cfcsp-compact-cnn-ensemble": "cfcsp_sdk.models.compact_cnn:build_compact_cnn_ensemble",
    "cfcsp-resnet": "cfcsp_sdk.models.resnet:build_face_resnet",
    "swin-s-cfcsp": "cfcsp_sdk.models.swin:build_swin_cfcsp",
}
_REGISTERED: dict[str, Callable[..., Any]] = {}


def register_architecture(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a builder ``fn(num_classes=..., **args) -> torch.nn.Module`` under ``name``."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTERED[name] = fn
        return fn

    return decorator


def list_architectures() -> list[str]:
    """Ids of every architecture that can be built."""
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def _builder(name: str) -> Callable[..., Any]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module_name, attr = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module_name), attr)
    raise ModelConfigError(
        f"unknown architecture {name!r}; known: {', '.join(list_architectures())}", field="architecture"
    )


def build_network(name: str, num_classes: int, args: dict[str, Any] | None = None) -> Any:
    """Build an untrained torch module of architecture ``name`` with ``num_classes`` outputs."""
    builder = _builder(name)
    try:
        return builder(num_classes=num_classes, **(args or {}))
    except TypeError as exc:
        raise ModelConfigError(f"bad arguments for architecture {name!r}: {exc}", field="args") from exc
