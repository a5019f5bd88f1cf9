"""Turning command-line style inputs (files, folders, globs, lists of paths or URLs) into a list of
media sources, in a stable order."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from cfcsp_sdk.errors import MediaError

# the one list of video suffixes: cfcsp predict's file-type decision, folders and globs of predict and
# batch all read it (a second copy in cli.py had .m2ts where this one had not)
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts", ".m2ts"}
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES


def is_url(source: str) -> bool:
    """``True`` for ``scheme://...`` sources (http, https, rtsp, ...)."""
    return "://" in source


def _read_list(path: Path) -> list[str]:
    """Entries of a list file: one path or URL a line; blank lines and ``#`` comments skipped; relative
    paths are relative to the list file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot read the list file {path}: {exc}", path) from exc
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if is_url(line) or os.path.isabs(line):
            out.append(line)
        else:
            out.append(str(path.parent / line))
    return out


def _folder(path: Path, suffixes: frozenset[str]) -> list[str]:
    return sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def expand_inputs(patterns: Iterable[str | os.PathLike[str]], suffixes: Iterable[str] = MEDIA_SUFFIXES) -> list[str]:
    """Expand inputs into media sources, each once, in the order given.

    Each pattern is one of:

    * a URL (``http(s)://``, ``rtsp://``...): kept as it is;
    * ``@list.txt`` or an existing ``.txt`` file: its lines (paths or URLs, ``#`` comments and blank
      lines skipped; relative paths are relative to the list's folder), each expanded again except
      that list files do not nest;
    * a folder: every file below it whose suffix is in ``suffixes`` (case-insensitive), sorted by path;
    * a glob (``*``, ``?``, ``[``, ``**``): the matching files, sorted (folders it matches are expanded);
    * a file: itself, whatever its suffix.

    Args:
        patterns: the inputs, as typed on a command line.
        suffixes: file suffixes (with the dot) taken from folders and globs.

    Returns:
        Paths (as given, not resolved) and URLs, duplicates removed (first occurrence kept).

    Raises:
        MediaError: a pattern matches nothing (missing file, empty folder, glob without a match), or a
            list file cannot be read.
    """
    wanted = frozenset(s.lower() for s in suffixes)
    out: list[str] = []
    seen: set[str] = set()

    def add(items: Iterable[str]) -> None:
        for item in items:
            key = item if is_url(item) else os.path.normpath(os.path.abspath(item))
            if key not in seen:
                seen.add(key)
                out.append(item)

    def expand(pattern: str, allow_list: bool) -> None:
        if is_url(pattern):
            add([pattern])
            return
        if allow_list and pattern.startswith("@"):
            for entry in _read_list(Path(pattern[1:])):
                expand(entry, allow_list=False)
            return
        path = Path(pattern)
        if allow_list and path.suffix.lower() == ".txt" and path.is_file():
            for entry in _read_list(path):
                expand(entry, allow_list=False)
            return
        if path.is_dir():
            found = _folder(path, wanted)
            if not found:
                raise MediaError(f"no media files ({', '.join(sorted(wanted))}) in the folder {path}", path)
            add(found)
            return
        if path.is_file():
            add([pattern])
            return
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            files = []
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    files += _folder(mp, wanted)
                elif mp.is_file() and mp.suffix.lower() in wanted:
                    files.append(m)
            if not files:
                raise MediaError(f"no media file matches {pattern!r}", pattern)
            add(files)
            return
        raise MediaError(f"no such file or folder: {pattern}", pattern)

    for p in patterns:
        expand(os.fspath(p), allow_list=True)
    return out
