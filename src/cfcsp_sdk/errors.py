"""The SDK's exception hierarchy: every error we raise on purpose derives from :class:`CfcspError`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any


class CfcspError(Exception):
    """Base class of every error raised by cfcsp-sdk."""


class InvalidInputError(CfcspError, ValueError):
    """An argument has the wrong type, dtype, shape or value (e.g. a float image, a 2-D batch)."""


def _is_bool(value: object) -> bool:
    # numpy's bool_ is not a Python bool subclass, so test its type name too
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool") and type(value).__module__ == "numpy"


def is_real_number(value: object) -> bool:
    """Whether ``value`` is a real number, Python or numpy, int or float, and not a bool (``True`` is an
    ``int`` to Python, but no caller means 1 by it)."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


def require_positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is a positive integer (Python or numpy; bools are refused), else
    :class:`InvalidInputError`."""
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def require_positive_number(name: str, value: object, maximum: float | None = None) -> float:
    """``value`` as a ``float`` if it is a finite number > 0 (Python or numpy, int or float; bools are
    refused) and at most ``maximum`` if given, else :class:`InvalidInputError`."""
    if not is_real_number(value):
        raise InvalidInputError(f"{name} must be a positive number, got {value!r} of type {type(value).__name__}")
    number = float(value)  # type: ignore[arg-type]  # a real number: checked above
    if not math.isfinite(number) or number <= 0:
        raise InvalidInputError(f"{name} must be a finite number > 0, got {number!r}")
    if maximum is not None and number > maximum:
        raise InvalidInputError(f"{name} must be at most {maximum:g}, got {number:g}")
    return number


def require_accepted_options(factory: Callable[..., Any], options: dict[str, Any], what: str) -> None:
    """:class:`InvalidInputError` unless ``factory(**options)`` matches its signature (names the unknown
    options and lists the accepted ones), so a misspelt option fails with our error, not a TypeError."""
    import inspect  # not at the top: this module is imported at start-up by the cfcsp command

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a callable without a signature: let the call itself decide
        return
    try:
        signature.bind(**options)
    except TypeError as exc:
        accepted = [n for n, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise InvalidInputError(f"{what}: {exc}; accepted options: {', '.join(accepted) or 'none'}") from None


class MediaError(CfcspError):
    """A file or stream could not be read as an image or a video (missing, empty, corrupt, not media)."""

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.path = path


class MediaWarning(UserWarning):
    """A video was read with frames missing: lost to damage (listed in ``skipped_frames``) or after the
    point where decoding stopped (``error``). The frames that were decoded stay valid."""


class ModelConfigError(CfcspError, ValueError):
    """A model repository's config.json (or a config object) is invalid; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field and not message.startswith(field) else message)
        self.field = field


def state_mismatch(
    source: str, target: str, missing: list[str], unexpected: list[str], wrong_shapes: list[str]
) -> ModelConfigError | None:
    """The error for weights that do not fit a network (``None`` if nothing is wrong), naming at most
    ten tensors of each kind."""

    def listed(names: list[str]) -> str:
        return f"{names[:10]}" + (f" ... ({len(names)} in all)" if len(names) > 10 else "")

    parts = [
        f"{kind} {listed(names)}"
        for kind, names in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong_shapes))
        if names
    ]
    return ModelConfigError(f"{source} does not fit {target}: " + "; ".join(parts)) if parts else None


class ModelNotFoundError(CfcspError, FileNotFoundError):
    """A model repository or one of its files could not be found (locally, in the cache or on the Hub)."""


class BackendError(CfcspError):
    """An inference backend is unknown, not installed, or failed to load or run a network."""


class UnsafeFileError(CfcspError, ValueError):
    """A model repository names a file that would lead outside its folder (a ``..`` or absolute path, a
    symlink pointing out, ONNX external data stored elsewhere), so it was refused unread."""


class UnsafePickleError(CfcspError):
    """A pickle held something other than plain arrays and containers, so it was refused unread."""


__all__ = [
    "BackendError",
    "CfcspError",
    "InvalidInputError",
    "MediaError",
    "MediaWarning",
    "ModelConfigError",
    "ModelNotFoundError",
    "UnsafeFileError",
    "UnsafePickleError",
]
