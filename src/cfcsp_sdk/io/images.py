"""Still images in, 8-bit BGR arrays out (OpenCV's channel order), with typed errors for bad input."""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from cfcsp_sdk.errors import InvalidInputError, MediaError

MAX_IMAGE_PIXELS = 200_000_000
"""Images with more pixels are refused (a 14000 x 14000 photo is ~196 M pixels)."""


def to_bgr_uint8(image: np.ndarray, color: str = "bgr") -> np.ndarray:
    """Convert an image array to ``H x W x 3`` uint8 BGR.

    Accepts ``H x W`` grey, ``H x W x 1``, ``H x W x 3`` (``color`` says BGR or RGB) and ``H x W x 4``
    (alpha dropped) arrays of dtype uint8, or uint16 (scaled down by 257, 65535 -> 255). Float and
    other dtypes are refused: their value range is ambiguous.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"an image must be a numpy array or a path, got {type(image).__name__}")
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
        image = image.astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InvalidInputError(
            f"images must be uint8 or uint16, got {image.dtype}; for floats in 0..1 "
            "pass (img * 255).round().astype(np.uint8)"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        if color not in ("bgr", "rgb"):
            raise InvalidInputError(f"color must be 'bgr' or 'rgb', got {color!r}")
        out = image[..., :3]
        if color == "rgb":
            out = out[..., ::-1]
    else:
        raise InvalidInputError(f"an image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if out.shape[0] < 1 or out.shape[1] < 1:
        raise InvalidInputError(f"the image is empty (shape {image.shape})")
    if out.shape[0] * out.shape[1] > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"image of {out.shape[1]}x{out.shape[0]} pixels exceeds {MAX_IMAGE_PIXELS} pixels")
    return np.ascontiguousarray(out)


EXIF_ORIENTATION = 0x0112


def _open_header(fp: IO[bytes]) -> Any:
    """Pillow's image object for ``fp``'s header (no pixels decoded), found the way ``Image.open`` finds a
    format (each registered plugin's ``accept`` test on the first bytes, in Pillow's order) but without its
    decompression-bomb check, so that a size beyond Pillow's limit still comes back and our own limit
    names it. ``None`` where no plugin takes the file. A plugin that checks for bombs itself while
    reading its header (TIFF, WebP, GIF and a few more) still raises ``DecompressionBombError``."""
    import struct

    from PIL import Image

    prefix = fp.read(16)
    tried: set[str] = set()
    for load in (Image.preinit, Image.init):
        load()
        for name in [n for n in Image.ID if n not in tried]:
            tried.add(name)
            factory, accept = Image.OPEN[name]
            try:
                if accept is not None:
                    verdict = accept(prefix)
                    if not verdict or isinstance(verdict, str):  # a str: "this format, but not supported"
                        continue
                fp.seek(0)
                return factory(fp, "")
            except (SyntaxError, IndexError, TypeError, ValueError, struct.error):
                continue
    return None


def _png_exif_after_pixels(fp: IO[bytes]) -> bytes | None:
    """A PNG's eXIf chunk stored after its pixel data, found by walking the chunk headers (8 bytes each,
    the data skipped with seeks: no pixels read); ``None`` if there is none."""
    import struct

    fp.seek(8)
    while len(head := fp.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        if kind == b"eXIf":
            return fp.read(length) if length <= 1 << 16 else None  # EXIF fits 64 KiB; a larger one is not read
        if kind == b"IEND":
            break
        fp.seek(length + 4, os.SEEK_CUR)  # data and CRC
    return None


def _bomb_pixels(exc: Exception) -> int:
    """The pixel count in Pillow's DecompressionBombError (its message gives no width and height)."""
    from PIL import Image

    m = re.search(r"\((\d+) pixels\)", str(exc))
    return int(m.group(1)) if m else 2 * int(Image.MAX_IMAGE_PIXELS or 0) + 1


def _read_header(path: Path) -> tuple[tuple[int, int], int] | int | None:
    """``((width, height), EXIF orientation)`` as stored, from the file's header (no pixels decoded);
    only the pixel count where a Pillow plugin refuses the header as a decompression bomb itself; ``None``
    where Pillow does not know the format or cannot read its header."""
    from PIL import Image

    try:
        with warnings.catch_warnings(), open(path, "rb") as fp:
            warnings.simplefilter("ignore")  # DecompressionBombWarning: our own limit applies
            im = _open_header(fp)
            if im is None:
                return None
            if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
                return im.size, 1  # refused: the orientation does not matter
            if im.format == "PNG" and "exif" not in im.info:
                # PNG's getexif() decodes every pixel to look for an eXIf chunk after them: find that chunk
                # from the chunk headers, then let the general getexif() read it, or the XMP and raw
                # profile text chunks read with the header
                data = _png_exif_after_pixels(fp)
                if data:
                    im.info["exif"] = data
                exif = Image.Image.getexif(im)
            else:
                exif = im.getexif()
            return im.size, int(exif.get(EXIF_ORIENTATION, 1) or 1)
    except Image.DecompressionBombError as exc:
        return _bomb_pixels(exc)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError):
        return None


def _decode_with_pillow(path: Path, reduce: int = 1) -> np.ndarray:
    """Pixels as a viewer shows them (EXIF orientation applied), as uint8/uint16 grey or RGB, or the
    file's own float/int dtype, which :func:`to_bgr_uint8` then refuses. ``reduce`` > 1 lets a JPEG
    decode at that fraction of its size (libjpeg's DCT scaling, through Pillow's ``draft``)."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                if reduce > 1 and im.format == "JPEG":
                    im.draft(im.mode, (im.width // reduce, im.height // reduce))
                im = ImageOps.exif_transpose(im)
                if im.mode not in ("L", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                    im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
                arr = np.asarray(im)
    except Image.DecompressionBombError as exc:  # Pillow's own limit, under ours, for a rotated photo
        raise InvalidInputError(f"image {path} is too large to rotate by its EXIF orientation: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise MediaError(f"corrupt image {path}: {exc}", path) from exc
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        arr = arr.astype(np.uint16)  # big-endian 16-bit to native
    return arr[..., :3] if arr.ndim == 3 else arr


def header_pixels(source: str | os.PathLike[str] | bytes) -> int | None:
    """Pixels (width x height) an image file, or an image's bytes, declares in its header; none decoded.
    ``None`` where Pillow cannot read the header. Unlike Pillow's own opening, a header beyond Pillow's
    decompression-bomb limit still gives its count, so a caller's own limit applies (the service's)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as fp:
                im = _open_header(fp)
                return None if im is None else int(im.size[0] * im.size[1])
    except Image.DecompressionBombError as exc:
        return _bomb_pixels(exc)
    except Exception:  # noqa: BLE001 - anything Pillow cannot read as an image
        return None


def image_size(source: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(width, height)`` of an image file as a viewer shows it (EXIF orientation applied), read
    from its header without decoding pixels; ``None`` where the header does not tell."""
    header = _read_header(Path(source))
    if not isinstance(header, tuple):
        return None
    (width, height), orientation = header
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _shrink(image: np.ndarray, reduce: int, full_size: tuple[int, int] | None = None) -> np.ndarray:
    """``image`` at 1/``reduce`` of ``full_size`` (width, height; default: its own), sides rounded up,
    unless the decoder already reduced it."""
    w, h = full_size or image.shape[1::-1]
    size = (-(-w // reduce), -(-h // reduce))
    if reduce == 1 or image.shape[1::-1] == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_image(source: str | os.PathLike[str] | np.ndarray, color: str = "bgr", reduce: int = 1) -> np.ndarray:
    """Read an image file (any format OpenCV decodes) or take an array; returns uint8 BGR ``H x W x 3``.

    With ``reduce`` (1, 2, 4 or 8; files only) the image comes at 1/``reduce`` of its width and height
    (rounded up): a JPEG is decoded at that size directly, several times faster and in a fraction of
    the memory (a 100-megapixel photo decodes in about 0.2 s instead of 1.5 s); other formats are
    decoded whole and shrunk by area averaging.

    A file is returned as a photo viewer shows it: its EXIF orientation (all eight values, e.g. a
    phone's portrait photo stored sideways with Orientation 6) is applied, so the array's size, and
    every box found in it, are in displayed coordinates. Arrays carry no EXIF: they are taken in the
    orientation the caller gives.

    Raises:
        MediaError: the file is missing, empty, not an image or corrupt.
        InvalidInputError: an unsupported array (float, wrong shape) or more than
            :data:`MAX_IMAGE_PIXELS` pixels (refused from the file's header before decoding, where the
            format allows).
    """
    if reduce not in (1, 2, 4, 8):
        raise InvalidInputError(f"reduce must be 1, 2, 4 or 8, got {reduce!r}")
    if isinstance(source, np.ndarray):
        return to_bgr_uint8(source, color)
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"an image must be a path or a numpy array, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise MediaError(f"no such file: {path}", path)
    if not path.is_file():
        raise MediaError(f"not a file: {path}", path)
    if path.stat().st_size == 0:
        raise MediaError(f"empty file: {path}", path)
    header = _read_header(path)
    if isinstance(header, int):  # a plugin refused it as a bomb: only the count is known
        if header > MAX_IMAGE_PIXELS:
            raise InvalidInputError(f"image of {header} pixels exceeds {MAX_IMAGE_PIXELS} pixels")
        header = None
    if header is not None:
        (width, height), orientation = header
        if width * height > MAX_IMAGE_PIXELS:
            raise InvalidInputError(f"image of {width}x{height} pixels exceeds {MAX_IMAGE_PIXELS} pixels")
        if orientation != 1:
            # Pillow applies EXIF orientation the same way for every format; OpenCV's own handling
            # differs by format and version (its TIFF reader orients even when asked not to)
            image = _decode_with_pillow(path, reduce)
            shown = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
            return _shrink(to_bgr_uint8(image, "rgb" if image.ndim == 3 else "bgr"), reduce, shown)
    data = np.fromfile(str(path), dtype=np.uint8)
    # without IMREAD_IGNORE_ORIENTATION, OpenCV applies the EXIF orientation of formats Pillow cannot open
    if reduce > 1 and header is not None and data[:3].tobytes() == b"\xff\xd8\xff":  # a JPEG: reduced DCT decoding
        reduced = cv2.imdecode(data, _REDUCED_FLAGS[reduce])
        if reduced is not None:
            return to_bgr_uint8(reduced, "bgr")
    decoded = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if decoded is None:
        raise MediaError(f"not an image OpenCV can decode (or corrupt): {path}", path)
    if decoded.ndim == 3 and decoded.shape[2] == 4:
        decoded = decoded[..., :3]  # BGRA from imdecode
    return _shrink(to_bgr_uint8(decoded, "bgr"), reduce)
