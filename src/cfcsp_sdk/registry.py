"""One registry type for the SDK's plug-in points: backends, network architectures and face detectors.

A :class:`Registry` finds a named object in three places, in this order:

1. run-time registrations (:meth:`Registry.register`, also usable as a decorator);
2. built-ins, given by import path (``"package.module:attribute"``) so that listing or checking names
   never imports their modules (the torch backend and architectures import torch only when used);
3. entry points of installed distributions in the registry's group (``[project.entry-points."<group>"]``).

Registering a name that is already known (from any of the three) replaces it for this process and warns
with :class:`RegistryOverwriteWarning`, so a plug-in that shadows a built-in never does so silently.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, overload

from cfcsp_sdk.errors import CfcspError

T = TypeVar("T")


class RegistryOverwriteWarning(UserWarning):
    """A run-time registration replaced a name that was already known (built-in, entry point or registered)."""


def load_path(path: str) -> Any:
    """The object ``"package.module:attribute"`` names (the module is imported)."""
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class Registry(Generic[T]):
    """Named objects of one kind: built-ins by import path, run-time registrations, entry points.

    Args:
        kind: what the names are, for messages (``"backend"``, ``"architecture"``, ``"detector"``).
        group: the entry-point group searched (``None``: no entry points).
        builtins: ``name -> "module:attribute"``.
        error: the error type raised for an unknown name or a plug-in that fails to load; called with the
            message as its only argument.
    """

    def __init__(
        self, kind: str, group: str | None, builtins: Mapping[str, str], error: Callable[[str], CfcspError] = CfcspError
    ) -> None:
        self.kind = kind
        self.group = group
        self._builtins = dict(builtins)
        self._registered: dict[str, T] = {}
        self._error = error

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"

    # ---- registering ---------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` under ``name`` for this process and return it; without ``obj``, a decorator
        that does the same. Warns with :class:`RegistryOverwriteWarning` if ``name`` was already known."""
        if not isinstance(name, str) or not name:
            raise self._error(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def add(value: T) -> T:
            previous = self._source(name)
            if previous is not None:
                warnings.warn(
                    f"{self.kind} {name!r} ({previous}) is replaced by {_describe(value)}",
                    RegistryOverwriteWarning,
                    stacklevel=2,
                )
            self._registered[name] = value
            return value

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove a run-time registration (built-ins and entry points of the name apply again)."""
        self._registered.pop(name, None)

    # ---- looking up ----------------------------------------------------------------------
    def _entry_points(self) -> dict[str, Any]:
        if self.group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def _source(self, name: str) -> str | None:
        if name in self._registered:
            return f"registered as {_describe(self._registered[name])}"
        if name in self._builtins:
            return f"built in as {self._builtins[name]}"
        eps = self._entry_points()
        if name in eps:
            return f"entry point {eps[name].value}"
        return None

    def names(self) -> list[str]:
        """Every known name, sorted: built-in, registered at run time and from installed entry points."""
        return sorted(set(self._builtins) | set(self._registered) | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            name in self._registered or name in self._builtins or name in self._entry_points()
        )

    def unknown(self, name: str) -> CfcspError:
        """The error for a name that is not known (``unknown <kind> 'x'; available: ...``)."""
        return self._error(f"unknown {self.kind} {name!r:.80}; available: {', '.join(self.names())}")

    def get(self, name: str) -> T:
        """The object registered as ``name`` (its module imported if it is a built-in or entry point).

        Raises:
            the registry's error type: ``name`` is unknown, or its plug-in fails to import.
        """
        if name in self._registered:
            return self._registered[name]
        if name in self._builtins:
            return load_path(self._builtins[name])
        eps = self._entry_points()
        if name not in eps:
            raise self.unknown(name)
        try:
            return eps[name].load()
        except Exception as exc:  # a broken plug-in must not look like our bug
            raise self._error(
                f"{self.kind} {name!r} from entry point {eps[name].value!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc


def _describe(value: Any) -> str:
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"{module}:{qualname}" if module else str(qualname)
