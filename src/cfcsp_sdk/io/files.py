"""Files the SDK writes appear whole or not at all; files a model folder names stay inside it.

Every writer (results' ``to_csv``/``to_json``/``to_abaw``, annotated images and videos, timeline plots,
``save_pretrained`` and model export) writes to a temporary file in the destination's folder, flushes
and fsyncs it, then renames it over the destination with :func:`os.replace`, which is atomic on POSIX
and Windows for paths on one file system. On any exception (a full disk, a codec error, Ctrl-C) the
temporary file is removed and a previous file at the destination is left untouched; after a kill -9
at worst a hidden ``.<name>.*.partial`` file is left next to it, never a cut file under the real name.
Writing through a destination that is a symlink replaces the link itself, so a planted link cannot
redirect a write elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cfcsp_sdk.errors import UnsafeFileError


def _fsync_folder(folder: Path) -> None:
    # makes the rename itself durable; not possible (nor needed) on Windows
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` (same suffix, so format-sniffing writers such as OpenCV and
    matplotlib pick the same format) that is moved to ``path`` when the block ends without an error.

    For writers that take a file name rather than a file object. The temporary file is fsynced before the
    rename. On an exception it is deleted and ``path`` keeps its previous content (or stays absent).

    Raises:
        FileNotFoundError: the destination folder does not exist.
    """
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".partial{dest.suffix}", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file readable by its owner only; give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(folder)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing (``mode`` ``"w"`` or ``"wb"``); it replaces
    ``path`` whole when the block ends without an error and is deleted otherwise."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only, mode 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "wb":
            with open(tmp, "wb") as f:
                yield f
        else:
            with open(tmp, "w", encoding=encoding, newline=newline) as f:
                yield f


def write_text_atomic(path: str | os.PathLike[str], text: str, newline: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all; returns the path."""
    with atomic_open(path, "w", newline=newline) as f:
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all; returns the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def allowed_roots(folder: Path) -> list[Path]:
    """The real folders that files of the repository ``folder`` may resolve into: the folder itself and,
    for a Hugging Face cache snapshot (``models--owner--name/snapshots/<rev>``), whose files are symlinks
    into the same repository's ``blobs`` folder, that ``blobs`` folder."""
    real = Path(folder).resolve()
    roots = [real]
    snapshots = Path(folder).absolute().parent
    if snapshots.name == "snapshots" and snapshots.parent.name.startswith(("models--", "datasets--", "spaces--")):
        roots.append((snapshots.parent / "blobs").resolve())
    return roots


def file_inside(
    folder: str | os.PathLike[str], relative: str, what: str = "file", *, for_writing: bool = False
) -> Path:
    """``folder / relative`` after checking that it cannot lead outside ``folder``.

    ``relative`` must be a relative path without ``..`` components (absolute paths, Windows drive
    letters and backslashes are refused too), and the real path, symlinks resolved, must lie inside
    the folder (or, for a Hugging Face cache snapshot, inside the same repository's blob store). The
    file need not exist. With ``for_writing=True`` a symlink in the last component is not followed (an
    atomic write replaces the link itself), only the folders above it must resolve inside.

    Raises:
        UnsafeFileError: naming ``what`` and the offending path.
    """
    rel = str(relative)
    parts = rel.replace("\\", "/").split("/")
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")) or ":" in rel or ".." in parts or os.path.isabs(rel):
        raise UnsafeFileError(f"{what} {rel!r} is not a plain path inside the model folder; refused")
    base = Path(folder)
    path = base / rel
    real = path.parent.resolve() / path.name if for_writing else path.resolve()
    if not any(_is_within(real, root) for root in allowed_roots(base)):
        raise UnsafeFileError(f"{what} {rel!r} resolves to {real}, outside the model folder {base}; refused")
    return path


__all__ = ["allowed_roots", "atomic_open", "atomic_path", "file_inside", "write_bytes_atomic", "write_text_atomic"]
